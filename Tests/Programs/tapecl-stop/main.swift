// A user's program that misuses TapeCL on purpose, built in release (-O) by `make test`: the test
// `StopMessageTests` checks that each stop prints its message, which `preconditionFailure` would
// drop in an optimised build (a bare "Illegal instruction").
import Foundation
import TapeCL
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime

let which = CommandLine.arguments.dropFirst().first ?? ""
if which == "default" {
    print(Tensor([1, 2]))  // on Device.default, which stops when TAPECL_DEVICE names no device
}
let device = try Device.named(CommandLine.arguments.dropFirst(2).first ?? "host")
withDevice(device) {
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
    case "step-reads":  // a training step with labels from the host reads nothing back
        let layer = Dense(inputSize: 4, outputSize: 3, seed: 1)
        let optimizer = Adam(learningRate: 0.01)
        let x = Tensor.randomNormal(shape: [4, 4], seed: 2)
        func step(_ labels: Tensor) {
            let tape = GradientTape()
            let loss = tape.record { sparseSoftmaxCrossEntropy(logits: layer(x), labels: labels) }
            optimizer.update(layer.variables, gradients: try! tape.gradient(of: loss, wrt: layer.variables))
        }
        step(Tensor([Int32(2), 0, 1, 2]))
        _ = layer.weight.value.scalars  // kernels built, queue drained
        let before = device.memory.reads
        step(Tensor([Int32(1), 1, 0, 2]))
        print("reads in a step: \(device.memory.reads - before)")
        stopHandler.withLock {
            $0 = { _ in
                print("label out of range caught"); exit(0)
            }
        }
        step(Tensor([Int32(1), 3, 0, 2]))
    case "devices":
        print(Tensor([1, 2]).to(.host) + Tensor([1, 2]).to(Device.openCL.first ?? .host))
    default:
        print(
            "usage: tapecl-stop shape|matmul|reshape|scalar|zeros|pending|sparse-rows|sparse-float|read-back|"
                + "allocate|dense-features|dense-named|sequential-twice|conv-nchw|conv-image|sparse-one-hot|dense-device|step-reads|devices|default "
                + "[DEVICE]")
    }
}
