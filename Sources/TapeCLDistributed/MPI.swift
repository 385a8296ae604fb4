import CMPI
import Foundation
import TapeCL

/// The MPI job this process belongs to, set up once, on first use.
///
/// MPI is initialised only when a launcher started the process (`mpirun`/`mpiexec` of Open MPI or
/// of MPICH's Hydra, which set the variables below); otherwise the process is rank 0 of 1 and
/// nothing here calls MPI. Every MPI call holds `lock` (MPI_THREAD_SERIALIZED).
final class MPIWorld: @unchecked Sendable {
    static let shared = MPIWorld()

    let rank: Int
    let size: Int
    let localRank: Int
    let initialized: Bool
    /// Whether MPI may be called from the communication thread (MPI_THREAD_SERIALIZED or more);
    /// otherwise buckets are reduced on the calling thread, after the walk.
    let threads: Bool
    let lock = NSLock()

    /// Variables that Open MPI's `mpirun` (OMPI_*, PMIX_*) and MPICH's Hydra (PMI_*) set in every rank.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]

    private init() {
        let environment = ProcessInfo.processInfo.environment
        guard Self.launcherVariables.contains(where: { environment[$0] != nil }) else {
            (rank, size, localRank, initialized, threads) = (0, 1, 0, false, false)
            return
        }
        // The communication thread waits inside MPI while the walk computes on the same cores: let
        // Open MPI yield the core while it waits instead of spinning (unless the user chose otherwise).
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        var r: Int32 = 0
        var s: Int32 = 1
        var l: Int32 = 0
        var t: Int32 = 0
        let code = tapecl_mpi_init(&r, &s, &l, &t)
        guard code == 0 else {
            FileHandle.standardError.write(Data("TapeCLDistributed: MPI_Init failed: \(Self.message(code))\n".utf8))
            exit(1)
        }
        (rank, size, localRank, initialized, threads) = (Int(r), Int(s), Int(l), true, t != 0)
        atexit { _ = tapecl_mpi_finalize() }
    }

    /// Runs one MPI call under the lock, turning a failure into a `TapeError.backend` naming `what`.
    func call(_ what: String, _ body: () -> Int32) throws {
        let code = lock.withLock(body)
        guard code == 0 else { throw TapeError.backend("\(what): MPI error \(code): \(Self.message(code))") }
    }

    static func message(_ code: Int32) -> String {
        let capacity = tapecl_mpi_max_error_string()
        var text = [CChar](repeating: 0, count: Int(capacity))
        tapecl_mpi_error_string(code, &text, capacity)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Element types and reductions as the shim numbers them.
    enum ElementType: Int32 {
        case float = 0, double = 1, int64 = 2, byte = 3, int32 = 4

        init(_ dtype: DType) throws {
            switch dtype {
            case .float32: self = .float
            case .float64: self = .double
            case .int32: self = .int32
            default: throw TapeError.dtype("TapeCLDistributed: \(dtype) tensors cannot be reduced")
            }
        }
    }

    /// In-place allreduce (blocking) of `count` elements at `buffer`.
    func allReduce(_ buffer: UnsafeMutableRawPointer, count: Int, _ type: ElementType, _ op: Int32) throws {
        guard size > 1, count > 0 else { return }
        try call("allreduce of \(count) elements") { tapecl_mpi_allreduce(buffer, Int32(count), type.rawValue, op) }
    }

    /// Broadcast (blocking) of `bytes` bytes from `root`, in pieces that fit MPI's `int` counts.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard size > 1 else { return }
        let piece = 1 << 30
        var offset = 0
        while offset < buffer.count {
            let n = min(piece, buffer.count - offset)
            try call("broadcast of \(buffer.count) bytes from rank \(root)") {
                tapecl_mpi_broadcast(buffer.baseAddress! + offset, Int32(n), ElementType.byte.rawValue, Int32(root))
            }
            offset += n
        }
    }

    /// Every rank's `values` must be equal: a blocking MAX and MIN reduction of them, the same call
    /// on every rank, so a mismatch is an error everywhere instead of a hang in a later collective.
    /// - Returns: the smallest and largest value of each position over all ranks.
    func extremes(_ values: [Int64]) throws -> (min: [Int64], max: [Int64]) {
        guard size > 1 else { return (values, values) }
        var both = values + values.map { $0 == .min ? .max : -$0 }
        let count = both.count
        try both.withUnsafeMutableBytes { raw in
            try call("agreement check") {
                tapecl_mpi_allreduce(raw.baseAddress!, Int32(count), ElementType.int64.rawValue, Int32(TAPECL_MPI_MAX))
            }
        }
        let n = values.count
        return (both[n...].map { -$0 }, Array(both[..<n]))
    }
}
