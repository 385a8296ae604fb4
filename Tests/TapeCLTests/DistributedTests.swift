import Foundation
import TapeCL
import TapeCLDistributed
import Testing

/// `mpirun -np N program arguments`, with what Open MPI needs here (root, more ranks than cores, one
/// PoCL and OpenBLAS thread per rank), killed after `timeout` seconds: a hang is a failure, not a stuck CI.
func mpirun(
    _ n: Int, _ program: String, _ arguments: [String], environment: [String: String] = [:], timeout: Double = 120
) throws -> (status: Int32, out: String, err: String, seconds: Double) {
    try mpirun(ranks: Array(repeating: [program] + arguments, count: n), environment: environment, timeout: timeout)
}

/// `mpirun -np 1 A : -np 1 B …`: rank `r` runs `ranks[r]` (a program beside the tests and its arguments).
func mpirun(
    ranks: [[String]], environment: [String: String] = [:], timeout: Double = 120
) throws -> (status: Int32, out: String, err: String, seconds: Double) {
    let launcher = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    guard let launcher else {
        throw TapeError.argument("mpirun is not installed (make deps installs openmpi-bin)")
    }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let env = [
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none", "POCL_MAX_PTHREAD_COUNT": "1", "OPENBLAS_NUM_THREADS": "1",
    ].merging(environment) { $1 }
    let forwarded = env.keys.sorted().flatMap { ["-x", $0] }
    // identical ranks are one context (`-np N`); different ones are joined with `:`
    let contexts: [[String]] =
        Set(ranks).count == 1
        ? [
            ["-np", String(ranks.count)] + forwarded + [bundle.appendingPathComponent(ranks[0][0]).path]
                + ranks[0].dropFirst()
        ]
        : ranks.map { ["-np", "1"] + forwarded + [bundle.appendingPathComponent($0[0]).path] + $0.dropFirst() }
    let start = Date()
    let process = Process()
    let killer = DispatchWorkItem { process.terminate() }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    defer { killer.cancel() }
    let r = try run(
        URL(fileURLWithPath: launcher), Array(contexts.joined(separator: [":"])), environment: env, process: process)
    return (r.status, r.out, r.err, Date().timeIntervalSince(start))
}

/// The lines `tapecl-mpi-check` wrote for each rank (`rank-R.txt` in `directory`).
func rankLines(_ directory: URL, ranks: Int) throws -> [[String]] {
    try (0..<ranks).map { r in
        try String(contentsOf: directory.appendingPathComponent("rank-\(r).txt"), encoding: .utf8)
            .split(separator: "\n").map { String($0.split(separator: " ", maxSplits: 2)[2]) }
    }
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-mpi-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Data-parallel training over MPI: each test starts `mpirun` (Open MPI here) with two ranks.
@Suite("distributed over MPI", .serialized)
struct DistributedTests {
    @Test func withoutMpirunAProcessIsRankZeroOfOne() throws {
        #expect(Distributed.size == 1)
        #expect(Distributed.rank == 0)
        #expect(Distributed.localRank == 0)
        let t = Tensor([1, 2, 3])
        #expect(Distributed.allReduce(t, op: .mean).scalars == [1, 2, 3])
        #expect(try Distributed.share(of: 5) == 0..<5)
    }

    @Test func twoRanksReportTheirPlace() throws {
        let r = try mpirun(2, "tapecl-mpi-check", ["world"], timeout: 60)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("rank 0 size 2 local 0"), "\(r.out)")
        #expect(r.out.contains("rank 1 size 2 local 1"), "\(r.out)")
    }

    /// Two ranks on half batches against one process on the whole batch: parameters within 1e-6 of their
    /// scale after 6 steps (the sums over the batch are split in two, so the last bits differ), identical
    /// bits on both ranks after every step, and the same bits whatever the bucket size.
    @Test(arguments: ["sgd", "adam"], ["host"] + Device.openCL.prefix(1).map(\.name))
    func twoRanksOnHalfBatchesMatchOneProcess(optimizer: String, device: String) throws {
        let (one, two, small) = (try temporaryDirectory(), try temporaryDirectory(), try temporaryDirectory())
        let arguments = ["train", optimizer, "6", "48"]
        let env = ["TAPECL_DEVICE": device]
        let single = try mpirun(
            1, "tapecl-mpi-check", arguments, environment: env.merging(["TAPECL_MPI_CHECK_OUT": one.path]) { $1 })
        #expect(single.status == 0, "\(single.err)")
        let pair = try mpirun(
            2, "tapecl-mpi-check", arguments, environment: env.merging(["TAPECL_MPI_CHECK_OUT": two.path]) { $1 })
        #expect(pair.status == 0, "\(pair.err)")
        let buckets = try mpirun(
            2, "tapecl-mpi-check", arguments + ["300"],
            environment: env.merging(["TAPECL_MPI_CHECK_OUT": small.path]) { $1 })
        #expect(buckets.status == 0, "\(buckets.err)")
        let reference = try rankLines(one, ranks: 1)[0]
        let ranks = try rankLines(two, ranks: 2)
        let smallBuckets = try rankLines(small, ranks: 2)
        #expect(ranks[0] == ranks[1], "the ranks' parameters differ")
        #expect(smallBuckets[0] == smallBuckets[1])
        func strip(_ lines: [String]) -> [String] { lines.map { $0.components(separatedBy: " buckets")[0] } }
        #expect(strip(smallBuckets[0]) == strip(ranks[0]), "300-byte buckets change the result")
        #expect(smallBuckets[0].contains { $0.hasPrefix("step 0 ") && !$0.hasSuffix("buckets 1") })
        func parameters(_ lines: [String]) -> [Double] {
            lines.filter { $0.hasPrefix("param ") }.map { Double(Float(String($0.split(separator: " ")[2]))!) }
        }
        let (a, b) = (parameters(reference), parameters(ranks[0]))
        #expect(a.count == 531 && b.count == 531)
        let scale = a.map(Swift.abs).max() ?? 1
        let worst = zip(a, b).map { Swift.abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-6 * scale, "largest difference \(worst) for parameters up to \(scale)")
    }

    @Test func mismatchedSourcesAreAnErrorOnEveryRankNotAHang() throws {
        let dir = try temporaryDirectory()
        let r = try mpirun(
            2, "tapecl-mpi-check", ["mismatch"], environment: ["TAPECL_MPI_CHECK_OUT": dir.path], timeout: 60)
        #expect(r.status != 0)
        #expect(r.seconds < 60)
        for lines in try rankLines(dir, ranks: 2) {
            #expect(
                lines.contains { $0.contains("error: DistributedGradientTape.gradient: the processes differ") },
                "\(lines)")
        }
    }

    @Test func anEmptyShareIsAnErrorOnEveryRank() throws {
        let dir = try temporaryDirectory()
        let r = try mpirun(
            2, "tapecl-mpi-check", ["empty"], environment: ["TAPECL_MPI_CHECK_OUT": dir.path], timeout: 60)
        #expect(r.status != 0)
        for lines in try rankLines(dir, ranks: 2) {
            #expect(lines.contains { $0.contains("a batch of 1 over 2 processes leaves process 1 without examples") })
        }
        let cli = try mpirun(
            2, "tapecl", ["train", "--distributed", "--device", "host", "--batch-size", "1"], timeout: 60)
        #expect(cli.status != 0)
        #expect(
            cli.err.components(separatedBy: "error: --distributed: a batch of 1 over 2 processes").count == 3,
            "\(cli.err)")
    }

    /// `mpirun -np 2 tapecl train --distributed` prints rank 0's lines only and ends with the accuracy
    /// of one process on the whole batches: the MLP on every device, the CNN on the host.
    @Test(arguments: [("mlp", "host")] + Device.openCL.prefix(1).map { ("mlp", $0.name) } + [("cnn", "host")])
    func trainDistributedReachesTheSingleProcessAccuracy(model: String, device: String) throws {
        let epochs = model == "cnn" ? 2 : 4
        let arguments = ["train", "--model", model, "--epochs", "\(epochs)", "--json", "--device", device]
        let single = try tapecl(arguments)
        let pair = try mpirun(2, "tapecl", arguments + ["--distributed"])
        #expect(single.status == 0 && pair.status == 0, "\(single.err) \(pair.err)")
        func accuracy(_ out: String) throws -> Double {
            let last = out.split(separator: "\n").last.map(String.init) ?? ""
            return try #require((try json(last) as? [String: Any])?["held_out_accuracy"] as? Double)
        }
        #expect(
            pair.out.split(separator: "\n").count == epochs + 1,
            "rank 0 alone prints \(epochs) epochs and a summary: \(pair.out)")
        let (a, b) = (try accuracy(single.out), try accuracy(pair.out))
        #expect(Swift.abs(a - b) <= 1.0 / 360, "one process \(a), two \(b)")
    }
}
