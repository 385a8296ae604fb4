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

    @Test func aTimeoutThatIsNotANumberIsAnError() throws {
        let r = try mpirun(2, "tapecl-mpi-check", ["world"], environment: ["TAPECL_MPI_TIMEOUT": "soon"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.err.contains("TAPECL_MPI_TIMEOUT must be a number of seconds above 0, not 'soon'"), "\(r.err)")
    }
}
