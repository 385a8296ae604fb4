import Foundation
import TapeCL
import TapeCLBenchmarks
import TapeCLDistributed

/// `tapecl bench W2 --distributed` under `mpirun -np N`: W2 data-parallel, four measurements
/// alternating in each round so that all see the same machine state:
///
/// 1. one process (rank 0; the others wait) on the whole batch — the step being split;
/// 2. every process at once on its share, without communication — the local step;
/// 3. a bare `MPI_Allreduce` of the gradients' floats — the communication that cannot be avoided;
/// 4. the data-parallel step: every process on its share with a `DistributedGradientTape`.
///
/// Each figure is the median over rounds of the slowest process. The goal is (4) ≤ 1.1 × ((2) + (3)):
/// the wrapper costs little beyond the communication, and overlaps some of it with the walk.
struct DistributedW2 {
    let batch: Int
    let rounds: Int
    let device: Device

    struct Result: Encodable {
        let workload = "W2 data-parallel"
        let device: String
        let processes: Int
        let batch: Int
        let rounds: Int
        let buckets: Int
        let gradientBytes: Int
        let wholeBatchMs: Double
        let localStepMs: Double
        let bareAllreduceMs: Double
        let distributedStepMs: Double
        let waitAfterWalkMs: Double
        /// How much of the bare allreduce time the step did not pay, in [0, 1]:
        /// 1 − (step − local step) / allreduce.
        let hiddenFraction: Double
        let ratio: Double
        let goalMet: Bool
    }

    func run() throws -> Result {
        try withDevice(device) {
            let network = MLPWorkload(batch: batch)
            try Distributed.broadcastChecked(network.parameters, root: 0)
            let mine = try Distributed.share(of: batch)
            let count = network.parameters.reduce(0) { $0 + $1.value.count }
            var figures: [[Double]] = Array(repeating: [], count: 5)  // whole, local, bare, distributed, wait
            var buckets = 0
            for round in 0..<(rounds + 3) {  // 3 warm-up rounds
                try Distributed.barrier()
                let whole = Distributed.rank == 0 ? try seconds { _ = try network.step().scalar } : 0
                try Distributed.barrier()
                let local = try seconds { _ = try network.step(rows: mine).scalar }
                let bare = try Distributed.bareAllReduceSeconds(count: count, repetitions: 3)
                try Distributed.barrier()
                let tape = DistributedGradientTape(GradientTape())
                let distributed = try seconds {
                    let loss = tape.record { network.loss(rows: mine) }
                    network.update(try tape.gradient(of: loss, wrt: network.parameters))
                    _ = loss.scalar  // waits for the update, queued before this read
                }
                buckets = tape.statistics.buckets
                guard round >= 3 else { continue }
                let slowest = try Distributed.allReduceChecked(
                    Tensor([whole, local, bare, distributed, tape.statistics.waitSeconds], dtype: .float64, on: .host),
                    op: .max
                ).scalars(as: Double.self)
                for i in 0..<5 { figures[i].append(slowest[i] * 1e3) }
            }
            let m = figures.map { $0.sorted()[$0.count / 2] }
            let ratio = m[3] / (m[1] + m[2])
            return Result(
                device: device.name, processes: Distributed.size, batch: batch, rounds: rounds, buckets: buckets,
                gradientBytes: 4 * count, wholeBatchMs: m[0], localStepMs: m[1], bareAllreduceMs: m[2],
                distributedStepMs: m[3], waitAfterWalkMs: m[4],
                hiddenFraction: min(1, max(0, 1 - (m[3] - m[1]) / m[2])),
                ratio: ratio, goalMet: ratio <= 1.1)
        }
    }

    static func describe(_ r: Result) -> String {
        let share = r.batch / r.processes
        return [
            "W2 data-parallel on \(r.device): \(r.processes) processes, batch \(r.batch) (\(share) each), "
                + "\(r.rounds) rounds, medians of the slowest process",
            String(format: "  one process, batch %d:              %8.3f ms/step", r.batch, r.wholeBatchMs),
            String(format: "  each process alone on its share:    %8.3f ms/step", r.localStepMs),
            String(
                format: "  bare allreduce of %.1f MB:           %8.3f ms", Double(r.gradientBytes) / 1e6,
                r.bareAllreduceMs),
            String(
                format:
                    "  data-parallel step (%d buckets):     %8.3f ms/step; "
                    + "waiting after the walk %.3f ms (%.0f%% of the step)",
                r.buckets, r.distributedStepMs, r.waitAfterWalkMs, 100 * r.waitAfterWalkMs / r.distributedStepMs),
            String(format: "  allreduce time hidden from the step: %.0f%%", 100 * r.hiddenFraction),
            String(
                format: "  step / (local step + allreduce) = %.3f (goal <= 1.1: %@)", r.ratio,
                r.goalMet ? "met" : "not met"),
        ].joined(separator: "\n")
    }
}
