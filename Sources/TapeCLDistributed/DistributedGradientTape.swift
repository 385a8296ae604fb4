import CMPI
import Foundation
import TapeCL

/// A `GradientTape` whose gradients are averaged over all processes (Horovod's
/// `DistributedGradientTape`).
///
/// The gradients are packed into buckets of about ``bucketBytes`` (25 MiB, PyTorch DDP's default;
/// the first bucket at most ``firstBucketBytes``, 1 MiB, so that communication starts early), in the
/// order the tape walk finishes them: a network's last layers first. Each bucket's allreduce
/// (`MPI_Iallreduce`) starts as soon as the walk has finished every gradient in it, while the walk
/// goes on to earlier layers; `gradient` returns once the last bucket is reduced. A bucket is one
/// read from the device (its gradients joined there) and one write back.
///
/// ```swift
/// let tape = DistributedGradientTape(GradientTape())
/// let loss = tape.record { meanSquaredError(model(x[mine]), y[mine]) }
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
        defer { exchange.release() }
        let start = DispatchTime.now().uptimeNanoseconds
        var gradients = try tape.gradient(of: target, wrt: sources, unconnected: .zero) { i, g in
            try exchange.ready(i, g)
        }
        let walked = DispatchTime.now().uptimeNanoseconds
        let doneDuringWalk = try exchange.completedSoFar()
        try exchange.finish(into: &gradients)
        statistics = Statistics(
            buckets: exchange.plan.count, walkSeconds: Double(walked - start) / 1e9,
            waitSeconds: Double(DispatchTime.now().uptimeNanoseconds - walked) / 1e9,
            bucketsDoneDuringWalk: doneDuringWalk)
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
        return buckets.filter { !$0.isEmpty }
    }
}

/// The buckets of one `gradient` call: gradients as the walk hands them over, each bucket's
/// host buffer and its allreduce request. Buckets start in plan order on every process (MPI
/// needs collectives started in the same order everywhere), each as soon as it and those before it
/// are complete.
struct Exchange {
    let plan: [[Int]]
    let world: MPIWorld
    private var gradients: [Int: Tensor] = [:]
    private var bucketOf: [Int: Int] = [:]
    private var storage: [UnsafeMutableRawBufferPointer] = []
    private var requests: [UnsafeMutableRawPointer?] = []
    private var next = 0

    init(plan: [[Int]], world: MPIWorld) {
        self.plan = plan
        self.world = world
        for (b, members) in plan.enumerated() { for i in members { bucketOf[i] = b } }
    }

    /// Source `i`'s local gradient is final: start every bucket now complete, and let MPI progress.
    mutating func ready(_ i: Int, _ gradient: Tensor?) throws {
        guard bucketOf[i] != nil, let gradient else { return }
        gradients[i] = gradient
        while next < plan.count, plan[next].allSatisfy({ gradients[$0] != nil }) { try start(next) }
        _ = try completedSoFar()
    }

    /// Packs bucket `b` (its gradients joined on their device: one read) and starts its allreduce.
    private mutating func start(_ b: Int) throws {
        let parts = plan[b].map { gradients[$0]! }
        let packed = withoutRecording { concat(parts.map { $0.reshaped(to: [-1]) }) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: packed.byteCount, alignment: 64)
        storage.append(buffer)
        try packed.copyBytes(into: buffer)
        let type = try MPIWorld.ElementType(packed.dtype)
        var request: UnsafeMutableRawPointer?
        try world.call("allreduce of gradient bucket \(b) (\(packed.byteCount) bytes)") {
            tapecl_mpi_iallreduce(
                buffer.baseAddress, Int32(packed.count), type.rawValue, Int32(TAPECL_MPI_SUM), &request)
        }
        requests.append(request)
        next += 1
    }

    /// Tests the running reductions (which is what lets MPI progress them); returns how many are done.
    mutating func completedSoFar() throws -> Int {
        for b in requests.indices {
            guard let request = requests[b] else { continue }
            var done: Int32 = 0
            try world.call("progress of gradient bucket \(b)") { tapecl_mpi_test(request, &done) }
            if done != 0 { requests[b] = nil }
        }
        return requests.filter { $0 == nil }.count
    }

    /// Waits for every bucket and replaces each gradient by the mean over processes: one write
    /// of the bucket to its device, then each gradient a range of it.
    mutating func finish(into gradients: inout [Tensor?]) throws {
        while next < plan.count { try start(next) }
        for b in requests.indices {
            guard let request = requests[b] else { continue }
            requests[b] = nil
            try world.call("gradient bucket \(b)") { tapecl_mpi_wait(request) }
        }
        for (b, members) in plan.enumerated() {
            let first = self.gradients[members[0]]!
            let type = try MPIWorld.ElementType(first.dtype)
            Distributed.divide(storage[b], type, by: world.size)
            let total = members.reduce(0) { $0 + self.gradients[$1]!.count }
            let mean = try Tensor(
                shape: [total], dtype: first.dtype, bytes: UnsafeRawBufferPointer(storage[b]), on: first.device)
            var offset = 0
            for i in members {
                let shape = self.gradients[i]!.shape
                let n = self.gradients[i]!.count
                gradients[i] = withoutRecording { mean[offset..<(offset + n)].reshaped(to: shape) }
                offset += n
            }
        }
    }

    /// Frees the host buffers (after waiting for any reduction still running, on an error path).
    mutating func release() {
        for case let request? in requests { _ = world.lock.withLock { tapecl_mpi_wait(request) } }
        requests = []
        for buffer in storage { buffer.deallocate() }
        storage = []
    }
}
