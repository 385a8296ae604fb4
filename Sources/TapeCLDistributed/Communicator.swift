import CMPI
import Foundation
import TapeCL

/// The communication thread: takes gradient buckets in order, reads each to host memory
/// (waiting for the device there, not on the walk's thread) and reduces it over all processes
/// with a blocking `MPI_Allreduce`, then divides by the number of processes. One per process,
/// started at first use; jobs run one at a time, in the order they were submitted.
///
/// Thread safety: `queue` and `started` are read and written only under `condition`'s lock.
final class Communicator: @unchecked Sendable {
    static let shared = Communicator()

    private let condition = NSCondition()
    private var queue: [Job] = []
    private var started = false

    /// One bucket: its gradients in, their means over all processes out, each read straight into
    /// its place in the bucket's host buffer and written back from it.
    /// Thread safety: the inputs are immutable; `outcome` and `interval` change only under
    /// `condition`'s lock.
    final class Job: @unchecked Sendable {
        let parts: [Tensor]
        let bucket: Int
        let world: MPIWorld
        private let condition = NSCondition()
        private var outcome: Result<[Tensor], any Error>?
        private var interval: (start: UInt64, end: UInt64)?

        init(parts: [Tensor], bucket: Int, world: MPIWorld) {
            self.parts = parts
            self.bucket = bucket
            self.world = world
        }

        var isDone: Bool { condition.withLock { outcome != nil } }

        /// Seconds this job ran before `time` (uptime nanoseconds).
        func seconds(before time: UInt64) -> Double {
            condition.withLock {
                guard let (start, end) = interval, start < time else { return 0 }
                return Double(Swift.min(end, time) - start) / 1e9
            }
        }

        /// Waits for the job; the means of the parts, on their devices.
        func result() throws -> [Tensor] {
            condition.lock()
            defer { condition.unlock() }
            while outcome == nil { condition.wait() }
            return try outcome!.get()
        }

        /// Runs on the communication thread.
        func run() {
            let start = DispatchTime.now().uptimeNanoseconds
            let r = Result { try reduce() }
            let end = DispatchTime.now().uptimeNanoseconds
            condition.withLock {
                outcome = r
                interval = (start, end)
                condition.broadcast()
            }
        }

        private func reduce() throws -> [Tensor] {
            let items = parts
            let dtype = items[0].dtype
            let type = try MPIWorld.ElementType(dtype)
            let count = items.reduce(0) { $0 + $1.count }
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count * dtype.byteSize, alignment: 64)
            defer { storage.deallocate() }
            var offset = 0
            for t in items {
                try t.copyBytes(into: UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + t.byteCount)]))
                offset += t.byteCount
            }
            if count > 0 {
                try world.allReduce(
                    storage.baseAddress!, count: count, type, Int32(TAPECL_MPI_SUM),
                    what: "allreduce of gradient bucket \(bucket) (\(storage.count) bytes)")
            }
            Distributed.divide(storage, type, by: world.size)
            offset = 0
            return try items.map { t in
                defer { offset += t.byteCount }
                let bytes = UnsafeRawBufferPointer(rebasing: storage[offset..<(offset + t.byteCount)])
                return try Tensor(shape: t.shape, dtype: t.dtype, bytes: bytes, on: t.device)
            }
        }
    }

    /// Queues the reduction of a bucket of gradients (of one dtype).
    func submit(_ parts: [Tensor], world: MPIWorld, bucket: Int) throws -> Job {
        let count = parts.reduce(0) { $0 + $1.count }
        guard count <= Int(Int32.max) else {
            throw TapeError.shape("DistributedGradientTape: a bucket of \(count) elements is more than MPI counts")
        }
        let job = Job(parts: parts, bucket: bucket, world: world)
        guard world.threads else {  // an MPI without thread support: reduce here, in order
            job.run()
            return job
        }
        condition.withLock {
            queue.append(job)
            if !started {
                started = true
                let thread = Thread { [unowned self] in self.loop() }
                thread.name = "TapeCL MPI"
                thread.start()
            }
            condition.signal()
        }
        return job
    }

    private func loop() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let job = queue.removeFirst()
            condition.unlock()
            job.run()
        }
    }
}
