import ArgumentParser
import Foundation
import TapeCL
import TapeCLCheck
@_spi(Runtime) import TapeCLRuntime

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every op of the table, forward, backward and second order, on the device against the host.",
        discussion:
            "Random shapes from --seed; errors are relative to max(1, |host value|). Exit status 1 on any mismatch.")

    @Option(help: "Seed for shapes and values.") var seed: UInt64 = 1
    @OptionGroup var options: CommonOptions

    func run() throws {
        var failed = 0
        try reportingErrors {
            let device = try options.resolveDevice()
            let results = OpCheck.run(on: device, seed: seed)
            failed = results.filter { !$0.ok }.count
            func e(_ x: Double) -> String { String(format: "%.1e", x) }
            if options.json {
                try JSON.print(results.map(Row.init))
            } else {
                print("checking \(device) (\(device.info.deviceName)) against the host, float32, seed \(seed)")
                print(
                    "op                  shapes                      forward abs/rel      gradient abs/rel     2nd "
                        + "order rel  tolerance f/g      ok"
                )
                for r in results {
                    let g = r.gradient.map { "\(e($0.abs)) \(e($0.rel))" } ?? "-"
                    let s = r.secondOrder.map { e($0.rel) } ?? "-"
                    let line = [
                        r.op.padding(toLength: 19, withPad: " ", startingAt: 0),
                        r.shapes.padding(toLength: 27, withPad: " ", startingAt: 0),
                        "\(e(r.forward.abs)) \(e(r.forward.rel))".padding(toLength: 20, withPad: " ", startingAt: 0),
                        g.padding(toLength: 20, withPad: " ", startingAt: 0),
                        s.padding(toLength: 14, withPad: " ", startingAt: 0),
                        "\(e(r.tolerance.forward)) \(e(r.tolerance.gradient))".padding(
                            toLength: 18, withPad: " ", startingAt: 0),
                        r.ok ? "ok" : "MISMATCH",
                    ]
                    print(line.joined(separator: " ") + (r.note.isEmpty ? "" : "  (\(r.note))"))
                }
                print(
                    "\(results.count - failed) of \(results.count) ops match the "
                        + "host\(failed > 0 ? ", \(failed) do not" : "")"
                )
            }
        }
        if failed > 0 { throw ExitCode(1) }
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
