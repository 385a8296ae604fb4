import COpenBLAS
import Foundation

/// The host's matrix products: OpenBLAS, loaded at first use with kernels fit for this CPU.
///
/// OpenBLAS built with `DYNAMIC_ARCH` (Debian's) picks its kernels when it is loaded, from its own
/// table of CPUs; a CPU newer than that table gets a generic core (Debian 12's 0.3.21 runs SSE3
/// `Prescott` kernels on Intel family 6 model 207: 39–60 GFLOP/s where `SkylakeX` gives 293).
/// `OPENBLAS_CORETYPE` overrides the choice, but only when set before OpenBLAS loads, which a
/// user cannot be expected to know. So TapeCL loads OpenBLAS itself, asks which core it chose,
/// and when ``coreToForce(flags:vendor:openBLASCore:userSetCore:)`` says the choice is a fallback
/// on a CPU with AVX2 or AVX-512, loads it again with `OPENBLAS_CORETYPE` set. A core OpenBLAS
/// knows (Zen, Haswell, SkylakeX, Cooperlake, …) and a user's own `OPENBLAS_CORETYPE` are kept.
@_spi(Runtime) public enum HostBLAS {
    /// What was loaded: the kernels in use and how they were chosen, or why OpenBLAS is missing.
    struct Loaded {
        let core: String
        let config: String
        let forced: String?
        let problem: String?
    }

    private static let loaded: Loaded = load()

    /// One phrase for `tapecl devices`: `OpenBLAS 0.3.21, SkylakeX kernels (chosen by TapeCL: OpenBLAS
    /// picked Prescott)`.
    @_spi(Runtime) public static var description: String {
        if let problem = loaded.problem { return "no BLAS (\(problem))" }
        let version = loaded.config.split(separator: " ").prefix(2).joined(separator: " ")
        return "\(version), \(loaded.core) kernels"
            + (loaded.forced.map { " (chosen by TapeCL: OpenBLAS picked \($0))" } ?? "")
    }

    /// Loads OpenBLAS once; every product goes through here first.
    /// - Throws: ``TapeError/backend(_:)`` when libopenblas.so.0 cannot be loaded.
    static func ready() throws {
        if let problem = loaded.problem { throw TapeError.backend("host matmul needs OpenBLAS: \(problem)") }
    }

    /// The `OPENBLAS_CORETYPE` to load OpenBLAS with, or nil to keep its own choice. Pure: a function
    /// of the CPU's feature flags (as `/proc/cpuinfo` lists them), its vendor, the core OpenBLAS
    /// picked when loaded without the variable, and whether the user set the variable.
    ///
    /// - A user's `OPENBLAS_CORETYPE` is never overridden.
    /// - A core OpenBLAS recognised is kept: its table knows the CPU.
    /// - A generic fallback (Prescott, Core2, Nehalem, …) on a CPU with AVX-512 (F, CD, BW, DQ, VL)
    ///   becomes `SkylakeX`; with AVX2 and FMA, `Zen` on AMD and `Haswell` otherwise; with AVX only,
    ///   `Sandybridge`.
    @_spi(Runtime) public static func coreToForce(
        flags: Set<String>, vendor: String, openBLASCore: String, userSetCore: Bool
    )
        -> String?
    {
        guard !userSetCore, fallbackCores.contains(openBLASCore.lowercased()) else { return nil }
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return vendor == "AuthenticAMD" ? "Zen" : "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// OpenBLAS's cores without AVX kernels: what it falls back to for a CPU it does not know.
    static let fallbackCores: Set<String> = [
        "generic", "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn",
        "dunnington", "nehalem", "atom", "athlon", "opteron", "opteron_sse3", "barcelona", "bobcat",
    ]

    /// The CPU's feature flags and vendor from `/proc/cpuinfo` (empty where it cannot be read).
    static func cpu() -> (flags: Set<String>, vendor: String) {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return ([], "") }
        func field(_ name: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(name) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return (Set((field("flags") ?? "").split(separator: " ").map(String.init)), field("vendor_id") ?? "")
    }

    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Tests only: `TAPECL_TEST_BLAS_FIRST_CORE=Prescott` makes the first load pick that core, as
    /// OpenBLAS does on a CPU it does not know, so the reload path runs on any machine.
    private static let simulatedFirstCore = ProcessInfo.processInfo.environment["TAPECL_TEST_BLAS_FIRST_CORE"]

    private static func load() -> Loaded {
        var error = [CChar](repeating: 0, count: 512)
        let userSet = !(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "").isEmpty
        if let simulatedFirstCore, !userSet { setenv("OPENBLAS_CORETYPE", simulatedFirstCore, 1) }
        let opened = tapecl_blas_open(&error, error.count)
        if simulatedFirstCore != nil && !userSet { unsetenv("OPENBLAS_CORETYPE") }
        guard opened == 0 else {
            return Loaded(core: "", config: "", forced: nil, problem: text(error))
        }
        let picked = String(cString: tapecl_blas_corename())
        let (flags, vendor) = cpu()
        var forced: String?
        if let core = coreToForce(flags: flags, vendor: vendor, openBLASCore: picked, userSetCore: userSet) {
            tapecl_blas_close()
            setenv("OPENBLAS_CORETYPE", core, 1)
            let reopened = tapecl_blas_open(&error, error.count)
            unsetenv("OPENBLAS_CORETYPE")  // child processes choose for themselves
            guard reopened == 0 else { return Loaded(core: "", config: "", forced: nil, problem: text(error)) }
            forced = picked
        }
        // Single-threaded: OpenBLAS's own pool busy-waits (sched_yield) and fought the host loops'
        // threads for the cores; the host backend splits each product's rows over its pool instead.
        tapecl_blas_set_num_threads(1)
        return Loaded(
            core: String(cString: tapecl_blas_corename()), config: String(cString: tapecl_blas_config()),
            forced: forced, problem: nil)
    }
}
