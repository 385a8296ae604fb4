import COpenCL
import Foundation

/// Kernel variants chosen by measurement. A driver's reported properties do not predict speed (Intel's
/// CPU runtime reports 8-float vectors, so the properties pick 6×16 blocks on it), and on a GPU they
/// predict even less. So, as CLBlast's tuner and tinygrad's BEAM search do, the first large matrix
/// product of each element size on a device times every candidate variant on that product's own shapes
/// and keeps the fastest, on disk beside the kernel binaries, keyed by device name, platform and driver
/// version. Until then (small products), with `TAPECL_TUNE=0`, and with `TAPECL_KERNEL_VARIANTS` forcing
/// a family, the property-based choice of ``KernelVariants`` holds.
extension OpenCLBackend {
    /// Products of at least this many multiply-adds are timed (W3's 1024³ and W6's are; a small model's
    /// layers are not, so a short program never pays for tuning).
    static let tuneAtMultiplyAdds = 1 << 24

    /// `TAPECL_TUNE=0` turns measurement off.
    static let tuningEnabled = ProcessInfo.processInfo.environment["TAPECL_TUNE"] != "0"

    /// The matmul variant for `l`, and whether `l` already ran: when this is the first large product of
    /// its element size here, every candidate runs it (three times each, the best time kept; one slower
    /// than four times the best so far once), then the winner runs it last, so its output is the
    /// winner's. The caller holds `lock`.
    func matmulVariant(_ l: Launch) throws -> (variant: KernelVariants.Matmul, ran: Bool) {
        let size = l.dtype.byteSize
        let chosen = KernelVariants.matmul(properties, elementSize: size, forced: KernelVariants.forced)
        guard Self.tuningEnabled, KernelVariants.forced == nil else { return (chosen, false) }
        if let tuned = tunedMatmul[size] { return (tuned, false) }
        if let stored = loadTuning(elementSize: size) {
            (tunedMatmul[size], tuningReport[size]) = stored
            return (stored.variant, false)
        }
        let (a, b) = (l.inputs[0], l.inputs[1])
        let g = MatmulShape(a.shape, b.shape, l.parameters.transposes.a, l.parameters.transposes.b)!
        guard g.batch * g.m * g.n * g.k >= Self.tuneAtMultiplyAdds else { return (chosen, false) }
        var timings: [(variant: KernelVariants.Matmul, seconds: Double)] = []
        for candidate in KernelVariants.matmulCandidates(properties, elementSize: size) {
            try matmul(l, candidate)  // builds the kernel and warms the caches
            try drain()
            var best = Double.infinity
            for _ in 0..<3 {
                let start = DispatchTime.now().uptimeNanoseconds
                try matmul(l, candidate)
                try drain()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                if best > 4 * (timings.map(\.seconds).min() ?? .infinity) { break }
            }
            timings.append((candidate, best))
        }
        let winner = timings.min { $0.seconds < $1.seconds }!.variant
        tunedMatmul[size] = winner
        tuningReport[size] = timings.map { "\($0.variant.key) \(String(format: "%.2f", $0.seconds * 1e3)) ms" }
            .joined(separator: ", ")
        do {
            let entry = winner.key + "\n" + tuningReport[size]!
            try ProgramCache.store(key: tuningKey(elementSize: size), binary: Array(entry.utf8))
        } catch { Notices.cacheUnwritable(error) }
        try matmul(l, winner)
        return (winner, true)
    }

    /// Waits for the queue (the caller holds `lock`).
    func drain() throws {
        openGate()
        try check(clFinish(queue), "clFinish")
        queued = false
    }

    func tuningKey(elementSize: Int) -> String {
        ["tuning matmul v1", info.deviceName, info.platform ?? "", info.driverVersion ?? "", "\(elementSize)"]
            .joined(separator: "\u{0}")
    }

    /// A choice stored by an earlier process for this device and driver, if any, with its timings
    /// (the entry: the winner's key, a newline, each candidate's time).
    func loadTuning(elementSize: Int) -> (variant: KernelVariants.Matmul, report: String)? {
        guard let entry = ProgramCache.load(key: tuningKey(elementSize: elementSize)) else { return nil }
        let lines = String(decoding: entry, as: UTF8.self).split(separator: "\n", maxSplits: 1).map(String.init)
        guard let variant = lines.first.flatMap(KernelVariants.Matmul.init(key:)) else { return nil }
        return (variant, lines.count > 1 ? lines[1] : "")
    }
}
