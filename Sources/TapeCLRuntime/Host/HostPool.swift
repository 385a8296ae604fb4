import Dispatch
import Foundation
import Synchronization

/// The cores the host loops use (read once: Foundation reads cgroup files on every query).
let hostCores = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Splits `0..<n` over the cores when there is enough work (`grain` elements per core at least).
@inline(__always)
@_spi(Runtime) public func parallelFor(_ n: Int, grain: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    if n < 2 * grain {
        body(0..<n)
        return
    }
    let parts = min(hostCores, n / grain)
    if parts <= 1 {
        body(0..<n)
        return
    }
    HostPool.shared.run(parts) { p in body(n * p / parts..<n * (p + 1) / parts) }  // disjoint ranges of one buffer
}

/// The host's worker threads, one per core beside the caller's. A job's parts are claimed one at a
/// time, so the caller runs them all if no worker comes. After a job a worker spins for ``spin``
/// before it sleeps: a training step issues dozens of parallel loops back to back, and waking a
/// sleeping thread (Dispatch's `concurrentPerform` did) cost 50–100 µs a loop here, as OpenMP's
/// and OpenBLAS's pools also find.
///
/// Thread safety: the current job is in a `Mutex`, the generation an atomic, the workers immutable;
/// a job's fields are immutable or atomic.
final class HostPool: Sendable {
    static let shared = HostPool(workers: hostCores - 1)
    /// How long an idle worker stays awake, in nanoseconds.
    static let spin: UInt64 = 200_000

    /// One `run`: its body (valid until every part is done) and its claim and completion counts.
    private final class Job: Sendable {
        let body: UncheckedBox<UnsafeRawPointer>, parts: Int
        let next = Atomic<Int>(0), done = Atomic<Int>(0)
        init(_ body: UnsafeRawPointer, _ parts: Int) { (self.body, self.parts) = (UncheckedBox(body), parts) }

        /// Runs parts until none is left; each part is claimed once, by whoever comes first.
        func work() {
            while case let p = next.add(1, ordering: .relaxed).oldValue, p < parts {
                body.value.assumingMemoryBound(to: ((Int) -> Void).self).pointee(p)
                done.add(1, ordering: .releasing)
            }
        }
    }

    private let generation = Atomic<Int>(0)
    private let current = Mutex<Job?>(nil)
    /// A worker's flag "asleep (or about to be)" and the semaphore that wakes it.
    private final class Worker: Sendable {
        let sleeping = Atomic<Bool>(false), wake = DispatchSemaphore(value: 0)
    }
    private let workers: [Worker]

    private init(workers count: Int) {
        workers = (0..<count).map { _ in Worker() }
        for worker in workers {
            let thread = Thread { [unowned self] in loop(worker) }
            thread.name = "tapecl-host"
            thread.stackSize = 8 << 20  // the loops keep their float64 blocks on the stack
            thread.start()
        }
    }

    /// Runs `body(p)` for every part `p` in `0..<parts`, on this thread and the workers.
    func run(_ parts: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            withUnsafePointer(to: body) { pointer in
                let job = Job(UnsafeRawPointer(pointer), parts)
                current.withLock { $0 = job }
                generation.add(1, ordering: .sequentiallyConsistent)
                for worker in workers where worker.sleeping.load(ordering: .sequentiallyConsistent) {
                    worker.wake.signal()
                }
                job.work()
                while job.done.load(ordering: .acquiring) < parts {}  // the last parts, on other cores
            }
        }
    }

    private func loop(_ worker: Worker) {
        var seen = 0
        while true {
            var idleSince = DispatchTime.now().uptimeNanoseconds
            var spins = 0
            while generation.load(ordering: .sequentiallyConsistent) == seen {
                spins += 1
                guard spins % 1024 == 0, DispatchTime.now().uptimeNanoseconds - idleSince > Self.spin else { continue }
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)  // then look once more: a job
                // bumped now signals
                if generation.load(ordering: .sequentiallyConsistent) == seen { worker.wake.wait() }
                worker.sleeping.store(false, ordering: .sequentiallyConsistent)
                idleSince = DispatchTime.now().uptimeNanoseconds
            }
            seen = generation.load(ordering: .sequentiallyConsistent)
            current.withLock { $0 }?.work()
        }
    }
}
