// Run by the distributed tests under `mpirun` (and without it). Prints one line per fact the tests check.
//
//   tapecl-mpi-check train sgd|adam STEPS BATCH [BUCKET_BYTES]
//       a 12-16-16-3 network trained on BATCH examples per step, split over the processes; after each
//       step prints "rank R step S <FNV-1a of the parameters' bytes>", at the end "rank R param I <%a>" for each
//   tapecl-mpi-check mismatch    rank 1 passes one source fewer: every rank prints its error
//   tapecl-mpi-check empty       a batch of 1 over the processes: every rank prints its error
//   tapecl-mpi-check world       prints "rank R size N local L"
//   tapecl-mpi-check stop        rank 1 stops itself (SIGSTOP) while rank 0 reduces: rank 0's wait times out
//   tapecl-mpi-check leave       rank 1 exits (status 0) at once while rank 0 reduces: rank 0's wait times out
//   tapecl-mpi-check orphan      prints "pid P"; rank 0 reduces at once, rank 1 after 4 s (the test kills mpirun)
import Foundation
import TapeCL
import TapeCLDistributed
import TapeCLNN

/// Where each rank writes its lines: `$TAPECL_MPI_CHECK_OUT/rank-R.txt` when set (mpirun's forwarding of
/// several ranks' stdout may cut lines), else stdout.
let output: FileHandle? = ProcessInfo.processInfo.environment["TAPECL_MPI_CHECK_OUT"].map { directory in
    let path = "\(directory)/rank-\(Distributed.rank).txt"
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    return FileHandle(forWritingAtPath: path)!
}

func say(_ line: String) {
    let text = "rank \(Distributed.rank) \(line)\n"
    if let output { output.write(Data(text.utf8)) } else { print(text, terminator: "") }
}

func hash(_ tensors: [Tensor]) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for t in tensors {
        for f in t.scalars { h = (h ^ UInt64(f.bitPattern)) &* 0x100_0000_01b3 }
    }
    return String(h, radix: 16)
}

func train(optimizerName: String, steps: Int, batch: Int, bucketBytes: Int) throws {
    let sizes = [12, 16, 16, 3]
    var layers: [Dense] = []
    for i in 0..<3 {
        @Sendable func activation(_ x: Tensor) -> Tensor { i < 2 ? tanh(x) : x }
        // different per rank: the broadcast must make them equal
        let seed = UInt64(7 + i + 100 * Distributed.rank)
        layers.append(Dense(inputSize: sizes[i], outputSize: sizes[i + 1], activation: activation, seed: seed))
    }
    let variables: [Variable] = layers.flatMap { $0.variables }
    Distributed.broadcast(variables, root: 0)
    let optimizer: any Optimizer =
        optimizerName == "adam" ? Adam(learningRate: 0.01) : SGD(learningRate: 0.1, momentum: 0.9)
    let mine = try Distributed.share(of: batch)
    for step in 0..<steps {
        let x = Tensor.randomNormal(shape: [batch, 12], seed: UInt64(1000 + step))
        let y = Tensor.randomNormal(shape: [batch, 3], seed: UInt64(2000 + step))
        let tape = DistributedGradientTape(GradientTape(), bucketBytes: bucketBytes)
        let loss = tape.record { meanSquaredError(predicted: layers.reduce(x[mine]) { $1($0) }, expected: y[mine]) }
        optimizer.update(variables, gradients: try tape.gradient(of: loss, wrt: variables))
        say("step \(step) \(hash(variables.map { $0.value })) buckets \(tape.statistics.buckets)")
    }
    for (i, value) in variables.flatMap({ $0.value.scalars }).enumerated() {
        say("param \(i) \(String(format: "%a", value))")
    }
}

let arguments = CommandLine.arguments.dropFirst()
do {
    switch arguments.first {
    case "train":
        let a = Array(arguments)
        try train(
            optimizerName: a[1], steps: Int(a[2])!, batch: Int(a[3])!, bucketBytes: a.count > 4 ? Int(a[4])! : 25 << 20)
    case "mismatch":
        let w = Variable(Tensor.ones(shape: [4]))
        let b = Variable(Tensor.zeros(shape: [4]))
        let tape = DistributedGradientTape(GradientTape())
        let loss = tape.record { (w * b + w).sum() }
        let sources = Distributed.rank == 1 ? [w] : [w, b]
        _ = try tape.gradient(of: loss, wrt: sources)
        say("no error")
    case "empty":
        _ = try Distributed.share(of: 1)
        say("no error")
    case "orphan":
        say("pid \(getpid())")
        if Distributed.rank == 1 { sleep(4) }
        _ = try Distributed.allReduceChecked(Tensor([1, 2, 3]))
        say("no error")
    case "stop", "leave":
        if Distributed.rank == 1 {
            if arguments.first == "stop" { raise(SIGSTOP) }
            exit(0)
        }
        _ = try Distributed.allReduceChecked(Tensor([1, 2, 3]))
        say("no error")
    case "world":
        say("size \(Distributed.size) local \(Distributed.localRank)")
    default:
        print("usage: tapecl-mpi-check train|mismatch|empty|world|stop|leave|orphan ...")
        exit(2)
    }
} catch {
    say("error: \(error)")
    exit(3)
}
