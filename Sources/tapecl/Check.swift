import ArgumentParser
import Foundation
import TapeCL
import TapeCLCheck

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every op of the table, forward, backward and second order, on the device against the host.",
        discussion:
            "Random shapes from --seed; errors are relative to max(1, |host value|). Then every elementwise op at "
            + "special values (±0, denormals, ±1e30, ±inf, NaN, saturation) and the other dtypes' ops (casts, "
            + "comparisons, reductions, gather, select) exactly. --device all checks every OpenCL device in turn. "
            + "Exit status 1 on any mismatch.")

    @Option(help: "Seed for shapes and values.") var seed: UInt64 = 1
    @OptionGroup var options: CommonOptions

    /// `tapecl check --json`: one device's report (an array of them for `--device all`).
    struct Report: Encodable {
        let device: String
        let implementation: String
        let ops: [Row]
        let specialValues: [SpecialRow]
        let ok: Bool
    }

    func run() throws {
        var failed = 0
        try reportingErrors {
            let devices: [Device]
            if options.device?.lowercased() == "all" {
                devices = Device.all.filter { $0 != .host }
                if devices.isEmpty { throw UserError("--device all: this machine has no device besides the host") }
            } else {
                devices = [try options.resolveDevice()]
            }
            var reports: [Report] = []
            for device in devices {
                let results = OpCheck.run(on: device, seed: seed)
                let special = SpecialValueCheck.run(on: device)
                let bad = results.filter { !$0.ok }.count + special.filter { !$0.ok }.count
                failed += bad
                let implementation = device.info.platform ?? "host"
                reports.append(
                    Report(
                        device: device.name, implementation: implementation, ops: results.map(Row.init),
                        specialValues: special.map(SpecialRow.init), ok: bad == 0))
                if !options.json { Self.print(device, results, special, seed: seed) }
            }
            if options.json {
                if devices.count == 1 { try JSON.print(reports[0]) } else { try JSON.print(reports) }
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    static func print(
        _ device: Device, _ results: [OpCheck.Result], _ special: [SpecialValueCheck.Result], seed: UInt64
    ) {
        func e(_ x: Double) -> String { String(format: "%.1e", x) }
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: n, withPad: " ", startingAt: 0) }
        let failed = results.filter { !$0.ok }.count
        Swift.print(
            "checking \(device) (\(device.info.deviceName), \(device.info.platform ?? "host")) against the host, "
                + "float32, seed \(seed)")
        Swift.print(
            "op                  shapes                      forward abs/rel      gradient abs/rel     2nd "
                + "order rel  tolerance f/g      ok"
        )
        for r in results {
            let g = r.gradient.map { "\(e($0.abs)) \(e($0.rel))" } ?? "-"
            let s = r.secondOrder.map { e($0.rel) } ?? "-"
            let line = [
                pad(r.op, 19), pad(r.shapes, 27), pad("\(e(r.forward.abs)) \(e(r.forward.rel))", 20), pad(g, 20),
                pad(s, 14), pad("\(e(r.tolerance.forward)) \(e(r.tolerance.gradient))", 18), r.ok ? "ok" : "MISMATCH",
            ]
            Swift.print(line.joined(separator: " ") + (r.note.isEmpty ? "" : "  (\(r.note))"))
        }
        Swift.print(
            "\(results.count - failed) of \(results.count) ops match the host\(failed > 0 ? ", \(failed) do not" : "")")
        let bad = special.filter { !$0.ok }
        for r in bad { Swift.print("special values: \(r.op) \(r.what): MISMATCH \(r.mismatch ?? "")") }
        let worst = special.filter(\.ok).max { $0.worstUlps < $1.worstUlps }
        Swift.print(
            "special values and dtypes: \(special.count - bad.count) of \(special.count) comparisons agree"
                + (worst.map {
                    String(format: " (worst %.1f ulps, %@ %@, bound %.0f)", $0.worstUlps, $0.op, $0.what, $0.boundUlps)
                } ?? "")
                + (bad.isEmpty ? "" : ", \(bad.count) do not"))
    }
}

/// One comparison of `tapecl check --json`'s special values.
struct SpecialRow: Encodable {
    let op: String
    let what: String
    let count: Int
    let worstUlps: Double?
    let boundUlps: Double
    let ok: Bool
    let mismatch: String?

    init(_ r: SpecialValueCheck.Result) {
        op = r.op
        what = r.what
        count = r.count
        worstUlps = r.worstUlps.isFinite ? r.worstUlps : nil
        boundUlps = r.boundUlps
        ok = r.ok
        mismatch = r.mismatch
    }
}

/// One op of `tapecl check --json`.
struct Row: Encodable {
    let op: String
    let shapes: String
    let forwardAbs: Double
    let forwardRel: Double
    let gradientAbs: Double?
    let gradientRel: Double?
    let secondOrderRel: Double?
    let toleranceForward: Double
    let toleranceGradient: Double
    let ok: Bool
    let note: String?

    init(_ r: OpCheck.Result) {
        op = r.op
        shapes = r.shapes
        forwardAbs = r.forward.abs
        forwardRel = r.forward.rel
        gradientAbs = r.gradient?.abs
        gradientRel = r.gradient?.rel
        secondOrderRel = r.secondOrder?.rel
        toleranceForward = r.tolerance.forward
        toleranceGradient = r.tolerance.gradient
        ok = r.ok
        note = r.note.isEmpty ? nil : r.note
    }
}
