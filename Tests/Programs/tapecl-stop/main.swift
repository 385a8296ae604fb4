// A user's program that misuses TapeCL on purpose, built in release (-O) by `make test`: the tests
// `ErrorTests` check that each stop prints its message, which `preconditionFailure` would drop in
// an optimised build (a bare "Illegal instruction"), and that `withErrors` catches each one.
import Foundation
import TapeCL
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime

// `tapecl-stop caught:MISUSE` runs the same misuse inside `withErrors` and prints what it caught.
let first = CommandLine.arguments.dropFirst().first ?? ""
let caught = first.hasPrefix("caught:")
let which = caught ? String(first.dropFirst("caught:".count)) : first
let device = try Device.named(CommandLine.arguments.dropFirst(2).first ?? "host")

func misuse() {
    if which == "default" {
        print(Tensor([1, 2]))  // on Device.default, which stops when TAPECL_DEVICE names no device
    }
    withDevice(device) { misuseOnDevice() }
}

if caught {
    do {
        try withErrors { misuse() }
        print("nothing caught")
    } catch {
        print("caught: \(error)")
    }
} else {
    misuse()
}

func misuseOnDevice() {
    switch which {
    case "shape":
        print(Tensor([1, 2, 3]) + Tensor([1, 2]))
    case "matmul":
        print(matmul(Tensor([[1, 2, 3]]), Tensor([[1, 2]])))
    case "reshape":
        print(Tensor([1, 2, 3]).reshaped(to: [2, 2]))
    case "scalar":
        print(Tensor([1, 2]).scalar)
    case "zeros":
        print(Tensor.zeros(shape: [1 << 40, 1 << 10]))
    case "pending":
        // Exits with kernels still queued (never read): the runtime drains the queue at exit.
        let x = Tensor.randomNormal(shape: [300, 300], seed: 1)
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { (matmul(sin(x), exp(-x)) + stack([x, x * 2]).sum(axes: [0])).max() }
        _ = try? tape.gradient(of: y, wrt: x)
    case "sparse-rows":  // 3 labels for 4 rows: the 4th row was silently left out of the mean
        print(sparseSoftmaxCrossEntropy(logits: Tensor.zeros(shape: [4, 3]), labels: Tensor([Int32(0), 1, 2])))
    case "sparse-float":  // float labels failed inside an internal add
        print(sparseSoftmaxCrossEntropy(logits: Tensor.zeros(shape: [3, 3]), labels: Tensor([0, 1, 2])))
    case "read-back":  // a 1 GiB tensor read back under `ulimit -v`: Swift's array allocation stopped the program
        let big = Tensor.zeros(shape: [1 << 28])
        print(big.scalars.count)
    case "allocate":  // 4 GiB on the device under `ulimit -v` (PoCL asserted in pocl_create_migration_commands)
        print((Tensor.zeros(shape: [1 << 30]) + 1).shape)
    case "dense-features":  // said "matmul: shapes [4, 1024] and [128, 10] do not fit", naming no layer
        print(Dense(inputSize: 128, outputSize: 10)(Tensor.zeros(shape: [4, 1024])))
    case "dense-named":
        print(Dense(inputSize: 128, outputSize: 10, name: "head")(Tensor.zeros(shape: [4, 1024])))
    case "sequential-twice":
        print(
            Sequential([Dense(inputSize: 2, outputSize: 2, name: "a"), Dense(inputSize: 2, outputSize: 2, name: "a")]))
    case "conv-nchw":  // said "the input's -1 channels" or an im2col shape
        print(Conv2D(filterShape: [3, 3, 1, 16])(Tensor.zeros(shape: [2, 1, 8, 8])))
    case "conv-image":
        print(Conv2D(filterShape: [3, 3, 1, 16])(Tensor.zeros(shape: [8, 8, 1])))
    case "sparse-one-hot":
        print(
            sparseSoftmaxCrossEntropy(logits: Tensor.zeros(shape: [2, 3]), labels: Tensor([[1, 0, 0], [0, 1, 0]])))
    case "dense-device":  // said "matmul: inputs on opencl:0 and host"
        let layer = withDevice(.host) { Dense(inputSize: 2, outputSize: 3) }
        print(layer(Tensor([[1, 2]])))
    case "step-reads":  // a training step with ids and labels from the host reads nothing back
        let embedding = Embedding(vocabularySize: 6, embeddingSize: 4, seed: 3)
        let layer = Dense(inputSize: 4, outputSize: 3, seed: 1)
        let optimizer = Adam(learningRate: 0.01)
        let x = Tensor.randomNormal(shape: [4, 4], seed: 2)
        let variables = embedding.variables + layer.variables
        func step(_ labels: Tensor, ids: Tensor = Tensor([[Int32(1), 5], [0, 0], [2, 3], [4, 1]])) {
            let tape = GradientTape()
            let loss = tape.record {
                sparseSoftmaxCrossEntropy(logits: layer(x + embedding(ids).mean(axes: [1])), labels: labels)
            }
            optimizer.update(variables, gradients: try! tape.gradient(of: loss, wrt: variables))
        }
        step(Tensor([Int32(2), 0, 1, 2]))
        _ = layer.weight.value.scalars  // kernels built, queue drained
        let before = device.memory.reads
        step(Tensor([Int32(1), 1, 0, 2]), ids: Tensor([[Int32(2), 2], [5, 0], [1, 3], [4, 4]]))
        print("reads in a step: \(device.memory.reads - before)")
        stopHandler.withLock {
            $0 = { _ in
                print("label out of range caught"); exit(0)
            }
        }
        step(Tensor([Int32(1), 3, 0, 2]))
    case "devices":
        print(Tensor([1, 2]).to(.host) + Tensor([1, 2]).to(Device.openCL.first ?? .host))
    case "inert-escape":  // an inert tensor used after its scope: a stop naming the scope's error
        var kept: Tensor? = nil
        _ = try? withErrors { kept = Tensor([1, 2, 3]) + Tensor([1, 2]) }
        print(kept! * 2)
    case "after-error":  // inside withErrors, nothing after the first error launches, records or assigns
        let layer = Dense(inputSize: 4, outputSize: 3, seed: 1)
        let optimizer = Adam(learningRate: 0.01)
        let x = Tensor.randomNormal(shape: [2, 4], seed: 2)
        let (wrong, labels) = (Tensor.zeros(shape: [2, 5]), Tensor([Int32(0), 2]))
        let before = layer.weight.value.scalars
        let launches = device.core.launches
        let tape = GradientTape()
        let caught = Result {
            try withErrors {
                let bad = tape.record { layer(wrong) }
                let loss = tape.record { sparseSoftmaxCrossEntropy(logits: layer(x) + bad, labels: labels) }
                let grads = try tape.gradient(of: loss, wrt: layer.variables)
                optimizer.update(layer.variables, gradients: grads)
                print("inert: \(loss.isInert) \(grads.allSatisfy { $0?.isInert == true }) \(grads.map { $0!.shape })")
            }
        }
        print("launches: \(device.core.launches - launches)")
        print("unchanged: \(layer.weight.value.scalars == before)")
        if case .failure(let error) = caught { print("error: \(error)") }
    default:
        print(
            "usage: tapecl-stop shape|matmul|reshape|scalar|zeros|pending|sparse-rows|sparse-float|read-back|"
                + "allocate|dense-features|dense-named|sequential-twice|conv-nchw|conv-image|sparse-one-hot|"
                + "dense-device|step-reads|devices|inert-escape|after-error|default, or caught:MISUSE [DEVICE]")
    }
}
