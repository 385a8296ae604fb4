import CMPI
import Foundation
import TapeCL

/// A `GradientTape` whose gradients are averaged over all processes (Horovod's
/// `DistributedGradientTape`).
///
/// The gradients are packed into buckets of about ``bucketBytes`` (25 MiB, PyTorch DDP's default;
/// the first bucket at most ``firstBucketBytes``, 1 MiB, so that communication starts early), in the
/// order the tape walk finishes them: a network's last layers first. Each bucket goes to a
/// communication thread (as in Horovod) as soon as the walk has finished every gradient in it; that
/// thread reads it from the device and reduces it (`MPI_Allreduce`) while the walk goes on to
/// earlier layers, and `gradient` returns once the last bucket is reduced. Each gradient is read
/// straight into its place in the bucket's host buffer and written back from it: one copy each way.
/// (Joining a bucket on the device first, for one read, was slower on PoCL: 1.25 × against 1.18 ×
/// the local step plus the allreduce, for W2's six gradients.)
///
/// (Why a thread and not `MPI_Iallreduce` on the walk's thread: Open MPI progresses a non-blocking
/// collective only inside MPI calls, so nothing moves while a matmul runs, and its non-blocking
/// allreduce of W2's 2.7 MB took 1.96 ms against 0.24 ms for the blocking one.)
///
/// ```swift
/// let tape = DistributedGradientTape(GradientTape())
/// let loss = tape.record { meanSquaredError(predicted: model(x[mine]), expected: y[mine]) }
/// let grads = try tape.gradient(of: loss, wrt: model.variables)   // the mean over processes
/// ```
///
/// Every process must ask for the gradients of the same sources, in the same order (checked: a
/// mismatch is an error on every process). A source the target does not depend on gets zeros,
/// since every process contributes to every bucket. Gradients of integer sources are `nil`.
public final class DistributedGradientTape {
    /// The wrapped tape; record on it or through ``record(_:)``.
    public let tape: GradientTape
    /// The most bytes of gradients one allreduce carries (a larger gradient travels alone).
    public var bucketBytes: Int
    /// The most bytes of the first bucket (the last layers' gradients), smaller so that it is ready early.
    public var firstBucketBytes: Int
    /// What the last `gradient` call measured.
    public private(set) var statistics = Statistics()

    /// Timings of one `gradient` call on this process.
    public struct Statistics: Sendable {
        /// Buckets reduced.
        public var buckets = 0
        /// Seconds from the start of the tape walk to its end (the local backward pass, with the
        /// packing and starting of the buckets that were ready during it).
        public var walkSeconds = 0.0
        /// Seconds spent after the walk waiting for reductions to finish: the communication
        /// that did not overlap the walk.
        public var waitSeconds = 0.0
        /// Buckets whose reduction had completed before the walk ended.
        public var bucketsDoneDuringWalk = 0
        /// Seconds the walk's thread spent handing buckets to the communication thread.
        public var packSeconds = 0.0
        /// Seconds the communication thread spent on the buckets (reading them, reducing them, dividing).
        public var communicationSeconds = 0.0
        /// The part of ``communicationSeconds`` that ran before the walk ended: hidden behind it.
        public var overlappedSeconds = 0.0
    }

    /// Wraps `tape` (persistent or not); `bucketBytes` and `firstBucketBytes` set the bucket sizes.
    public init(_ tape: GradientTape, bucketBytes: Int = 25 << 20, firstBucketBytes: Int = 1 << 20) {
        self.tape = tape
        self.bucketBytes = bucketBytes
        self.firstBucketBytes = firstBucketBytes
    }

    /// Records `body` on the wrapped tape.
    public func record<R>(_ body: () throws -> R) rethrows -> R { try tape.record(body) }

    /// Watches `items` on the wrapped tape.
    public func watch(_ items: [any TensorConvertible]) { tape.watch(items) }

    /// The gradient of `target` with respect to `source`, averaged over all processes.
    public func gradient(of target: some TensorConvertible, wrt source: some TensorConvertible) throws -> Tensor? {
        try gradient(of: target, wrt: [source])[0]
    }

    /// The gradients of `target` with respect to `sources`, averaged over all processes: the
    /// gradient of the mean of the processes' targets. With equal shares of a batch and a mean
    /// loss, that is the gradient of the whole batch's mean loss.
    ///
    /// - Throws: `TapeError.shape` on every process when the processes' sources differ in number,
    ///   shape or dtype; an MPI failure as `TapeError.backend`; the wrapped tape's errors.
    public func gradient(of target: some TensorConvertible, wrt sources: [any TensorConvertible]) throws -> [Tensor?] {
        let world = MPIWorld.shared
        guard world.size > 1 else { return try tape.gradient(of: target, wrt: sources) }
        let values = sources.map { ($0 as? Variable)?.value ?? $0.tensor(like: nil) }
        try Distributed.agree("DistributedGradientTape.gradient", values)
        var exchange = Exchange(
            plan: Self.plan(values, bucketBytes: bucketBytes, first: firstBucketBytes), world: world)
        let start = DispatchTime.now().uptimeNanoseconds
        var gradients = try tape.gradient(of: target, wrt: sources, unconnected: .zero) { i, g in
            try exchange.ready(i, g)
        }
        let walked = DispatchTime.now().uptimeNanoseconds
        let doneDuringWalk = exchange.completed()
        try exchange.finish(into: &gradients)
        statistics = Statistics(
            buckets: exchange.plan.count, walkSeconds: Double(walked - start) / 1e9,
            waitSeconds: Exchange.since(walked), bucketsDoneDuringWalk: doneDuringWalk,
            packSeconds: exchange.packSeconds, communicationSeconds: exchange.communicationSeconds(before: .max),
            overlappedSeconds: exchange.communicationSeconds(before: walked))
        return gradients
    }

    /// Sources grouped into buckets: last source first (the walk finishes those first), one dtype
    /// and device per bucket, at most `bucketBytes` (`first` for the first) unless one gradient alone
    /// is larger. Integer sources have no gradient and no bucket. The same on every process (checked by `agree`).
    static func plan(_ values: [Tensor], bucketBytes: Int, first: Int) -> [[Int]] {
        var buckets: [[Int]] = []
        var bytes = 0
        for i in values.indices.reversed() where values[i].dtype.isFloatingPoint {
            let sameKind =
                buckets.last.map { values[$0[0]].dtype == values[i].dtype && values[$0[0]].device == values[i].device }
                ?? false
            let limit = buckets.count <= 1 ? min(first, bucketBytes) : bucketBytes
            if !sameKind || bytes + values[i].byteCount > limit {
                buckets.append([])
                bytes = 0
            }
            buckets[buckets.count - 1].append(i)
            bytes += values[i].byteCount
        }
        return buckets
    }
}

/// The buckets of one `gradient` call. A bucket goes to the communication thread as soon as it and
/// the buckets before it are complete; that thread reads it to the host and reduces it while the
/// walk goes on. Buckets go in plan order on every process, as MPI needs collectives in the same
/// order everywhere.
struct Exchange {
    let plan: [[Int]]
    let world: MPIWorld
    private var gradients: [Int: Tensor] = [:]
    private var bucketOf: [Int: Int] = [:]
    private var jobs: [Communicator.Job] = []
    private(set) var packSeconds = 0.0

    init(plan: [[Int]], world: MPIWorld) {
        self.plan = plan
        self.world = world
        for (b, members) in plan.enumerated() { for i in members { bucketOf[i] = b } }
    }

    /// Source `i`'s local gradient is final: send every bucket now complete.
    mutating func ready(_ i: Int, _ gradient: Tensor?) throws {
        guard bucketOf[i] != nil, let gradient else { return }
        gradients[i] = gradient
        while jobs.count < plan.count, plan[jobs.count].allSatisfy({ gradients[$0] != nil }) { try send(jobs.count) }
    }

    /// Queues bucket `b`'s reads and allreduce.
    private mutating func send(_ b: Int) throws {
        let clock = DispatchTime.now().uptimeNanoseconds
        defer { packSeconds += Self.since(clock) }
        jobs.append(try Communicator.shared.submit(plan[b].map { gradients[$0]! }, world: world, bucket: b))
    }

    /// Buckets whose reduction has finished.
    func completed() -> Int { jobs.filter(\.isDone).count }

    /// Seconds of communication (reads and reductions) that ran before `time` (nanoseconds).
    func communicationSeconds(before time: UInt64) -> Double {
        jobs.reduce(0) { $0 + $1.seconds(before: time) }
    }

    /// Waits for every bucket and replaces each gradient by the mean over processes.
    mutating func finish(into gradients: inout [Tensor?]) throws {
        while jobs.count < plan.count { try send(jobs.count) }
        for (b, members) in plan.enumerated() {
            for (i, mean) in zip(members, try jobs[b].result()) { gradients[i] = mean }
        }
    }

    static func since(_ start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
