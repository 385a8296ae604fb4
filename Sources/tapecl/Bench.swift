import ArgumentParser
import Foundation
import TapeCL
import TapeCLBenchmarks
import TapeCLDistributed

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the benchmark workloads W1–W6 (bench/WORKLOADS.md) on a device.",
        discussion:
            "Setup is not timed; warm-ups run first; each timed repetition ends by reading a value back. "
            + "Prints the median with min and max."
    )

    @Argument(help: "Workloads to run (default: all): W1 W2 W3 W4 W5 W6.")
    var workloads: [String] = []

    @Flag(help: "Smaller sizes and fewer repetitions.")
    var quick = false

    @Flag(
        help: ArgumentHelp(
            "W2 data-parallel: run under mpirun -np N; compares the step on N processes with one process on its "
                + "share plus a bare allreduce (see README)."))
    var distributed = false

    @OptionGroup var options: CommonOptions

    func run() throws {
        try reportingErrors {
            if distributed { return try runDistributed() }
            let device = try options.resolveDevice()
            let chosen = try (workloads.isEmpty ? Workload.all.map(\.id) : workloads).map { id in
                guard let w = Workload.named(id) else {
                    throw UserError("unknown workload '\(id)' (W1 W2 W3 W4 W5 W6)")
                }
                return w
            }
            for w in chosen {
                let size = quick ? w.quickSize : w.size
                let m = try w.run(size, device, quick)
                let (lo, hi) = (m.samples.min() ?? .nan, m.samples.max() ?? .nan)
                if options.json {
                    var fields: [String: JSONField] = [
                        "workload": .string(w.id), "name": .string(w.name), "device": .string(device.name),
                        "size": .int(size),
                        "figure": .string(w.figure), "median": .double(m.median), "min": .double(lo),
                        "max": .double(hi),
                        "reps": .int(m.samples.count),
                    ]
                    for (key, value) in m.extra + m.checks {
                        let name = key.replacingOccurrences(of: " ", with: "_").replacingOccurrences(of: "/", with: "_")
                        fields[name] = key.hasSuffix("bytes") ? .int(Int(value)) : .double(value)
                    }
                    if let limit = Self.limit(w, m, device.info) {
                        fields[limit.key] = .double(limit.value)
                        fields["fraction_of_" + limit.key] = .double(limit.fraction)
                    }
                    try JSON.print(fields)
                } else {
                    let extras = (m.extra + m.checks).map { key, value in
                        "\(key) " + (key.hasSuffix("bytes") ? String(Int(value)) : String(format: "%.6g", value))
                    }.joined(separator: ", ")
                    func column(_ text: String, _ width: Int) -> String {
                        text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
                    }
                    print(
                        "\(w.id) \(column(w.name, 11)) \(column(device.name, 9)) size \(column(String(size), 9)) "
                            + String(
                                format: "%@ median %.4g (min %.4g, max %.4g, %d reps)", w.figure, m.median, lo, hi,
                                m.samples.count)
                            + (extras.isEmpty ? "" : "; " + extras)
                            + (Self.limit(w, m, device.info).map {
                                String(
                                    format: "; %.1f%% of the device's %@ (%.0f)", 100 * $0.fraction, $0.name, $0.value)
                            } ?? ""))
                }
            }
        }
    }

    func runDistributed() throws {
        guard workloads.map({ $0.uppercased() }) == ["W2"] || workloads.isEmpty else {
            throw UserError("--distributed measures W2 only, not \(workloads.joined(separator: " "))")
        }
        guard Distributed.size > 1 else {
            throw UserError(
                "--distributed measures several processes: start it under MPI, as in "
                    + "'mpirun -np 2 tapecl bench W2 --distributed'")
        }
        do { try Distributed.agree(on: [("--quick", "\(quick)")]) } catch { throw UserError("--distributed: \(error)") }
        let device = options.device == nil ? Distributed.device : try options.resolveDevice()
        let batch = quick ? 64 : 256
        let result = try DistributedW2(batch: batch, rounds: quick ? 5 : 20, device: device).run()
        guard Distributed.rank == 0 else { return }
        if options.json { try JSON.print(result) } else { print(DistributedW2.describe(result)) }
    }

    /// The figure against the device's own limit, where both are known (GPUs, see `DevicePeaks`):
    /// W3's GFLOP/s against the FP32 peak, W4's GB/s against the memory bandwidth.
    static func limit(
        _ w: Workload, _ m: TapeCLBenchmarks.Measurement, _ info: DeviceInfo
    )
        -> (key: String, name: String, value: Double, fraction: Double)?
    {
        if w.figure == "GFLOP/s", let peak = info.peakGFLOPS {
            return ("peak_gflops", "FP32 peak GFLOP/s", peak, m.median / peak)
        }
        if let gbps = m.extra.first(where: { $0.0 == "GB/s" })?.1, let bandwidth = info.bandwidthGBps {
            return ("bandwidth_gbps", "memory bandwidth GB/s", bandwidth, gbps / bandwidth)
        }
        return nil
    }
}
