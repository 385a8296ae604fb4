import CMPI
import Foundation
import TapeCL

/// The MPI job this process belongs to, set up once, on first use.
///
/// MPI is initialised only when a launcher started the process (`mpirun`/`mpiexec` of Open MPI or
/// of MPICH's Hydra, which set the variables below); otherwise the process is rank 0 of 1 and
/// nothing here calls MPI. Every MPI call holds `lock` (MPI_THREAD_SERIALIZED).
///
/// One job, one outcome: every wait ends within ``timeout`` seconds (`TAPECL_MPI_TIMEOUT`) with an
/// error naming what was waited for and, where known, the ranks that did not arrive; a process
/// that exits with a non-zero status (or after a failed wait) ends the whole job with `MPI_Abort`,
/// unless every rank failed alike (a disagreement that ``Distributed`` found on every rank).
///
/// Thread safety: the rank, size and settings are immutable; `broken` changes only under `lock`.
final class MPIWorld: @unchecked Sendable {
    static let shared = MPIWorld()

    let rank: Int
    let size: Int
    let localRank: Int
    let initialized: Bool
    /// Whether MPI may be called from the communication thread (MPI_THREAD_SERIALIZED or more);
    /// otherwise buckets are reduced on the calling thread, after the walk.
    let threads: Bool
    /// Seconds any one wait may take before the job ends with an error.
    let timeout: Double
    let lock = NSLock()
    /// A wait failed or timed out: the job cannot go on, and exiting aborts it. Under `lock`.
    private var broken = false
    /// The error being thrown is the same on every rank (they all saw the same gathered values),
    /// so a non-zero exit finalises normally instead of aborting. Under `lock`.
    private var failedAlike = false
    /// The process that started this one (`mpirun`); a different parent means the launcher has gone.
    private let parent = getppid()

    /// Variables that Open MPI's `mpirun` (OMPI_*, PMIX_*) and MPICH's Hydra (PMI_*) set in every rank.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]

    /// `TAPECL_MPI_TIMEOUT` when unset.
    static let defaultTimeout = 300.0

    private init() {
        let environment = ProcessInfo.processInfo.environment
        guard Self.launcherVariables.contains(where: { environment[$0] != nil }) else {
            (rank, size, localRank, initialized, threads, timeout) = (0, 1, 0, false, false, Self.defaultTimeout)
            return
        }
        let text = environment["TAPECL_MPI_TIMEOUT"]
        guard let seconds = text == nil ? Self.defaultTimeout : Double(text!), seconds > 0, seconds.isFinite else {
            Self.fail("TAPECL_MPI_TIMEOUT must be a number of seconds above 0, not '\(text ?? "")'")
        }
        timeout = seconds
        // The communication thread waits inside MPI while the walk computes on the same cores: let
        // Open MPI yield the core while it waits instead of spinning (unless the user chose otherwise).
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        var r: Int32 = 0
        var s: Int32 = 1
        var l: Int32 = 0
        var t: Int32 = 0
        let code = tapecl_mpi_init(&r, &s, &l, &t)
        guard code == 0 else { Self.fail("MPI_Init failed: \(Self.message(code))") }
        (rank, size, localRank, initialized, threads) = (Int(r), Int(s), Int(l), true, t != 0)
        on_exit({ status, _ in MPIWorld.shared.end(status: status) }, nil)
    }

    /// At exit: finalise when the job ends well (or failed alike everywhere), else abort every rank.
    private func end(status: Int32) {
        let abort = lock.withLock { broken || (status != 0 && !failedAlike) }
        if abort { tapecl_mpi_abort(status == 0 ? 1 : status) } else { _ = tapecl_mpi_finalize() }
    }

    /// Records that the error about to be thrown was found the same way on every rank.
    func failingAlike() { lock.withLock { failedAlike = true } }

    /// The message, on standard error, and exit status 2 (before MPI is initialised: `mpirun` then
    /// ends the other ranks).
    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("TapeCLDistributed: \(message)\n".utf8))
        exit(2)
    }

    static func message(_ code: Int32) -> String {
        let capacity = tapecl_mpi_max_error_string()
        var text = [CChar](repeating: 0, count: Int(capacity))
        tapecl_mpi_error_string(code, &text, capacity)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `count` requests (`start(i, request)`) and waits until all complete, polling, at most
    /// ``timeout`` seconds. Holds `lock` throughout, so waits never interleave.
    ///
    /// - Parameter peers: the rank that request `i` waits for, to name in a timeout; `nil` when it
    ///   waits for all of them (a collective).
    /// - Throws: `TapeError.backend` naming `what` on an MPI error or a timeout; the job is then
    ///   broken, and exiting aborts it.
    func wait(
        _ what: String, count: Int = 1, peers: [Int]? = nil, _ start: (Int, UnsafeMutableRawPointer) -> Int32
    ) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !broken else { throw TapeError.backend("\(what): an earlier MPI wait failed; the job cannot go on") }
        let stride = Int(tapecl_mpi_request_size())
        let requests = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1) * stride, alignment: 16)
        defer { requests.deallocate() }
        func failure(_ text: String) -> TapeError {
            broken = true
            return TapeError.backend("\(what): \(text)")
        }
        for i in 0..<count {
            let code = start(i, requests + i * stride)
            guard code == 0 else { throw failure("MPI error \(code): \(Self.message(code))") }
        }
        var pending = Array(0..<count)
        let begin = DispatchTime.now().uptimeNanoseconds
        var polls = 0
        while !pending.isEmpty {
            var still: [Int] = []
            for i in pending {
                var done: Int32 = 0
                let code = tapecl_mpi_test(requests + i * stride, &done)
                guard code == 0 else { throw failure("MPI error \(code): \(Self.message(code))") }
                if done == 0 { still.append(i) }
            }
            pending = still
            guard !pending.isEmpty else { break }
            polls += 1
            // Spin for the first few thousand polls (a collective in step is microseconds away), then nap.
            if polls < 4096 { sched_yield() } else { usleep(50) }
            guard polls % 256 == 0 else { continue }
            if getppid() != parent {
                FileHandle.standardError.write(Data("TapeCLDistributed: rank \(rank): mpirun has ended\n".utf8))
                _exit(1)
            }
            let waited = Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9
            if waited > timeout {
                let missing = peers.map { p in Array(Set(pending.map { p[$0] })).sorted() }
                let who =
                    missing.map { "rank \(rank) waited for \(Self.list($0)), which did not arrive" }
                    ?? "rank \(rank) waited; not every one of \(Self.list((0..<size).filter { $0 != rank })) arrived"
                throw failure(
                    "no answer within \(Self.seconds(timeout)) s (TAPECL_MPI_TIMEOUT): \(who); the job cannot go on")
            }
        }
    }

    static func list(_ ranks: [Int]) -> String {
        (ranks.count == 1 ? "rank " : "ranks ") + ranks.map(String.init).joined(separator: ", ")
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }

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

    /// In-place allreduce of `count` elements at `buffer`, named `what` in errors.
    func allReduce(
        _ buffer: UnsafeMutableRawPointer, count: Int, _ type: ElementType, _ op: Int32, what: String? = nil
    ) throws {
        guard size > 1, count > 0 else { return }
        try wait(what ?? "allreduce of \(count) elements") { _, request in
            tapecl_mpi_iallreduce(buffer, Int32(count), type.rawValue, op, request)
        }
    }

    /// Broadcast of `bytes` bytes from `root`, in pieces that fit MPI's `int` counts.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {
        guard size > 1 else { return }
        let piece = 1 << 30
        var offset = 0
        while offset < buffer.count {
            let n = min(piece, buffer.count - offset)
            try wait("broadcast of \(buffer.count) bytes from rank \(root)") { _, request in
                tapecl_mpi_ibcast(
                    buffer.baseAddress! + offset, Int32(n), ElementType.byte.rawValue, Int32(root), request)
            }
            offset += n
        }
    }

    /// Every rank's `mine`, in rank order, on every rank. Every rank must pass the same number of
    /// bytes. Rank 0 receives each rank's bytes and sends them all back, so a rank that does not
    /// arrive is named in the timeout.
    func allGather(_ what: String, _ mine: [UInt8]) throws -> [[UInt8]] {
        guard size > 1, !mine.isEmpty else { return Array(repeating: mine, count: size) }
        let width = mine.count
        var all = [UInt8](repeating: 0, count: width * size)
        let (gather, answer): (Int32, Int32) = (0x7a01, 0x7a02)
        let byte = ElementType.byte.rawValue
        try all.withUnsafeMutableBytes { everyone in
            let base = everyone.baseAddress!
            if rank == 0 {
                _ = mine.withUnsafeBytes { memcpy(base, $0.baseAddress!, width) }
                let others = Array(1..<size)
                try wait(what, count: others.count, peers: others) { i, request in
                    tapecl_mpi_irecv(base + others[i] * width, Int32(width), byte, Int32(others[i]), gather, request)
                }
                try wait(what, count: others.count, peers: others) { i, request in
                    tapecl_mpi_isend(base, Int32(width * size), byte, Int32(others[i]), answer, request)
                }
            } else {
                try mine.withUnsafeBytes { own in
                    try wait(what, count: 2, peers: [0, 0]) { i, request in
                        i == 0
                            ? tapecl_mpi_isend(own.baseAddress!, Int32(width), byte, 0, gather, request)
                            : tapecl_mpi_irecv(base, Int32(width * size), byte, 0, answer, request)
                    }
                }
            }
        }
        return (0..<size).map { Array(all[($0 * width)..<(($0 + 1) * width)]) }
    }

    /// Every rank's `values` (the same count on every rank), in rank order.
    func allGather(_ what: String, _ values: [Int64]) throws -> [[Int64]] {
        let bytes = values.withUnsafeBytes { Array($0) }
        return try allGather(what, bytes).map { row in
            row.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        }
    }
}
