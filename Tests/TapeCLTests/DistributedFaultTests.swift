import Foundation
import TapeCL
import Testing

/// One MPI job, one outcome: a rank's error, a rank that stops or leaves, and ranks that disagree
/// end the whole job within seconds, with the message, instead of hanging (issue 28, items 1–3).
@Suite("MPI faults end the job", .serialized)
struct DistributedFaultTests {
    static let train = ["tapecl", "train", "--distributed", "--device", "host", "--epochs", "2"]

    /// Rank 1's `--load` file is missing: rank 1 printed its error and hung in `MPI_Finalize` while
    /// rank 0 waited in the weights' broadcast, forever.
    @Test func oneRanksErrorEndsTheJobWithItsMessage() throws {
        let r = try mpirun(ranks: [Self.train, Self.train + ["--load", "/nonexistent/w.safetensors"]], timeout: 60)
        #expect(r.status == 2, "\(r.err)")
        #expect(r.seconds < 30, "the job took \(r.seconds) s")
        #expect(r.err.contains("error: --load: no such file: /nonexistent/w.safetensors"), "\(r.err)")
        #expect(!r.out.contains("held-out accuracy"))
    }

    /// Different `--epochs`, `--seed` or `--learning-rate` trained apart to exit 0; now every rank
    /// names the options and each rank's value before a step is taken.
    @Test(arguments: [
        (["--epochs", "3"], "--epochs (rank 0: 2, rank 1: 3)"),
        (["--seed", "5"], "--seed (rank 0: 0, rank 1: 5)"),
        (["--learning-rate", "0.02"], "--learning-rate (rank 0: 0.01, rank 1: 0.02)"),
        (["--optimizer", "sgd"], "--optimizer (rank 0: adam, rank 1: sgd)"),
    ])
    func ranksThatDisagreeDoNotTrain(options: [String], expected: String) throws {
        let r = try mpirun(ranks: [Self.train, Self.train + options], timeout: 60)
        #expect(r.status == 2, "\(r.err)")
        let message = "error: --distributed: the processes disagree on \(expected); every process must run with"
        #expect(r.err.components(separatedBy: message).count == 3, "on both ranks: \(r.err)")
        #expect(!r.out.contains("epoch"), "\(r.out)")
    }

    /// A rank that stops (SIGSTOP) or exits while the other waits in a collective: the waiting rank
    /// ends the job after `TAPECL_MPI_TIMEOUT` seconds, naming the wait and the rank that did not arrive.
    @Test(arguments: ["stop", "leave"])
    func aWaitThatIsNotAnsweredEndsTheJob(mode: String) throws {
        let dir = try temporaryDirectory()
        let r = try mpirun(
            2, "tapecl-mpi-check", [mode], environment: ["TAPECL_MPI_CHECK_OUT": dir.path, "TAPECL_MPI_TIMEOUT": "3"],
            timeout: 60)
        #expect(r.status != 0)
        #expect(r.seconds < 30, "the job took \(r.seconds) s")
        let lines = try rankLines(dir, ranks: 1)[0]
        #expect(
            lines == [
                "error: Distributed.allReduce: agreement on the tensors' shapes: no answer within 3 s "
                    + "(TAPECL_MPI_TIMEOUT): rank 0 waited for rank 1, which did not arrive; the job cannot go on"
            ], "\(lines)")
    }

    /// When `mpirun` is killed, its ranks ran on as orphans; a rank that waits, or comes to wait,
    /// now sees that its launcher has gone and exits.
    @Test func ranksDoNotOutliveAKilledMpirun() throws {
        let dir = try temporaryDirectory()
        let launcher = try #require(
            ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let program = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("tapecl-mpi-check")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher)
        process.arguments = ["-np", "2", "-x", "TAPECL_MPI_CHECK_OUT", program.path, "orphan"]
        process.environment = ProcessInfo.processInfo.environment.merging([
            "TAPECL_MPI_CHECK_OUT": dir.path, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        func pids() -> [Int32] {
            (0..<2).compactMap { r in
                (try? String(contentsOf: dir.appendingPathComponent("rank-\(r).txt"), encoding: .utf8))
                    .flatMap { $0.split(separator: "\n").first { $0.contains(" pid ") } }
                    .flatMap { Int32($0.split(separator: " ").last!) }
            }
        }
        let start = Date()
        while pids().count < 2 && Date().timeIntervalSince(start) < 60 { usleep(100_000) }
        let ranks = pids()
        try #require(ranks.count == 2, "the ranks did not start")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        func alive(_ pid: Int32) -> Bool {  // a zombie (no reaper in a container) has ended
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            return !stat.contains(") Z ")
        }
        let killed = Date()
        while ranks.contains(where: alive) && Date().timeIntervalSince(killed) < 30 { usleep(100_000) }
        let left = ranks.filter(alive)
        #expect(left.isEmpty, "ranks \(left) still run \(Date().timeIntervalSince(killed)) s after mpirun was killed")
        for pid in left { kill(pid, SIGKILL) }
    }

    @Test func aTimeoutThatIsNotANumberIsAnError() throws {
        let r = try mpirun(2, "tapecl-mpi-check", ["world"], environment: ["TAPECL_MPI_TIMEOUT": "soon"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.err.contains("TAPECL_MPI_TIMEOUT must be a number of seconds above 0, not 'soon'"), "\(r.err)")
    }
}
