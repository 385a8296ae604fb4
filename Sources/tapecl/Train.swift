import ArgumentParser
import Foundation
import TapeCL
import TapeCLData
import TapeCLDistributed
import TapeCLNN

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a small classifier on the 8×8 handwritten digits shipped with TapeCL.",
        discussion:
            "1,797 images (UCI Optical Recognition of Handwritten Digits, CC BY 4.0): 80% train, 20% held "
            + "out. --model mlp: a 64-64-10 network with ReLU; --model cnn: two 3×3 convolutions (16 and 32 "
            + "filters, ReLU, same padding) each followed by 2×2 max pooling, then a dense layer to 10 classes. "
            + "Softmax cross-entropy, Adam or SGD. The same seed on the same device gives the same numbers. "
            + "--save writes the weights as safetensors, --load starts from them (--epochs 0 only evaluates)."
    )

    @Option(name: .customLong("epochs"), help: "Passes over the training set (default: 15 for mlp, 20 for cnn).")
    var epochsOption: Int?
    @Option(help: "Examples per step.") var batchSize = 64
    @Option(name: .customLong("learning-rate"), help: "Learning rate (default: 0.01 for mlp, 0.005 for cnn).")
    var learningRateOption: Double?
    @Option(help: "adam or sgd.") var optimizer = "adam"
    @Option(help: "Seed for weights and the split.") var seed: UInt64 = 0
    @Option(help: "Hidden units (mlp).") var hidden = 64
    @Option(help: "mlp or cnn.") var model = "mlp"
    @Option(help: "Write the trained weights to this safetensors file.") var save: String?
    @Option(help: "Start from the weights in this safetensors file (as --save wrote them).") var load: String?
    @Flag(
        help: ArgumentHelp(
            "Data-parallel over MPI: run under mpirun; each process takes a share of every batch, gradients are "
                + "averaged, rank 0 prints. Each process uses opencl:<local rank> when there are several devices."))
    var distributed = false
    @OptionGroup var options: CommonOptions

    func run() throws {
        try reportingErrors {
            try validate()
            let opt: any Optimizer =
                switch optimizer.lowercased() {
                case "adam": Adam(learningRate: learningRate)
                case "sgd": SGD(learningRate: learningRate, momentum: 0.9)
                default: throw UserError("--optimizer must be adam or sgd, not '\(optimizer)'")
                }
            let device =
                distributed && options.device == nil ? Distributed.device : try options.resolveDevice()
            if distributed { try agreeOnSettings() }
            if let save, !distributed || Distributed.rank == 0 {  // before hours of training, not after
                do { try FileWriting.checkWritable(URL(fileURLWithPath: save)) } catch {
                    throw UserError("--save: \(error)")
                }
            }
            let data = try DigitsData(seed: seed, on: device)
            try checkShares(trainCount: data.trainCount)
            try checkMemory(on: device, trainCount: data.trainCount, testCount: data.testCount)
            try withDevice(device) { try train(data, opt, device) }
        }
    }

    var epochs: Int { epochsOption ?? (model == "cnn" ? 20 : 15) }
    var learningRate: Double { learningRateOption ?? (model == "cnn" ? 0.005 : 0.01) }

    static let maxEpochs = 1_000_000
    static let maxBatchSize = 1 << 20
    static let maxHidden = 1 << 24

    /// Every option in its range, checked before anything is allocated or trained.
    func validate() throws {
        guard (0...Self.maxEpochs).contains(epochs) else {
            throw UserError("--epochs must be from 0 to \(Self.maxEpochs), not \(epochs)")
        }
        guard ["mlp", "cnn"].contains(model) else { throw UserError("--model must be mlp or cnn, not '\(model)'") }
        guard (1...Self.maxBatchSize).contains(batchSize) else {
            throw UserError("--batch-size must be from 1 to \(Self.maxBatchSize), not \(batchSize)")
        }
        guard (1...Self.maxHidden).contains(hidden) else {
            throw UserError("--hidden must be from 1 to \(Self.maxHidden), not \(hidden)")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw UserError("--learning-rate must be a finite number above 0, not \(learningRate)")
        }
    }

    /// With `--distributed`, every process must train alike: the same model, data order, steps and
    /// update (each may have its own `--device`; rank 0's weights, loaded or not, are broadcast).
    func agreeOnSettings() throws {
        let settings = [
            ("--model", model), ("--hidden", "\(hidden)"), ("--epochs", "\(epochs)"), ("--batch-size", "\(batchSize)"),
            ("--learning-rate", "\(learningRate)"), ("--optimizer", optimizer.lowercased()), ("--seed", "\(seed)"),
        ]
        do { try Distributed.agree(on: settings) } catch { throw UserError("--distributed: \(error)") }
    }

    /// With `--distributed`, every batch (the last one too) must give each process an example.
    func checkShares(trainCount: Int) throws {
        guard distributed else { return }
        let size = Distributed.size
        let last = trainCount % batchSize
        for count in [min(batchSize, trainCount), last] where count != 0 && count < size {
            Distributed.failingAlike()  // every rank checks the batch size they agreed on
            throw UserError(
                "--distributed: a batch of \(count) over \(size) processes leaves some without examples "
                    + "(\(trainCount) images in batches of \(batchSize)); use a batch size whose batches all hold at "
                    + "least \(size)")
        }
    }

    /// The network's memory: weights with their gradients and two Adam moments, and the activations
    /// and their gradients of a batch or of the held-out images, which are evaluated at once, float32.
    /// More than half of what the device can really have (for the host and CPU devices: what the
    /// process can still allocate, under `ulimit -v` or a cgroup's limit) is an error, not an abort.
    func checkMemory(on device: Device, trainCount: Int, testCount: Int) throws {
        // the cnn: its filters and dense layer; per example, the im2col rows and activations of both convolutions
        let weights =
            model == "cnn" ? 9 * 16 + 16 + 9 * 16 * 32 + 32 + 128 * 10 + 10 : 64 * hidden + hidden + hidden * 10 + 10
        let perExample = model == "cnn" ? 64 * (9 + 3 * 16) + 16 * (144 + 3 * 32) + 128 + 20 : 64 + 2 * hidden + 2 * 10
        // a batch's activations with their gradients; the held-out images' without
        let activations = max(2 * min(batchSize, trainCount), testCount) * perExample
        let bytes = 4 * (4 * weights + activations)
        let host = Device.availableHostMemory
        let available =
            device.info.type == "GPU" ? device.info.globalMemoryBytes : min(device.info.globalMemoryBytes, host)
        guard bytes <= available / 2 else {
            throw UserError(
                "\(model == "cnn" ? "--model cnn" : "--hidden \(hidden)") with --batch-size \(batchSize) needs about "
                    + "\(bytes) bytes; \(device) can have about \(available)"
            )
        }
    }

    func train(_ data: DigitsData, _ opt: any Optimizer, _ device: Device) throws {
        let network = makeModel()
        let variables = network.variables
        if let load { try loadWeights(load, into: network) }
        let model = { (x: Tensor) in network(self.model == "cnn" ? x.reshaped(to: [x.shape[0], 8, 8, 1]) : x) }
        let speaks = !distributed || Distributed.rank == 0  // under mpirun, rank 0 prints
        if distributed { try Distributed.broadcastChecked(variables, root: 0) }
        let progress = isatty(STDOUT_FILENO) != 0 && !options.json && !distributed  // mpirun gives ranks a pty
        let steps = (data.trainCount + batchSize - 1) / batchSize
        var rng = SplitMix64(seed: seed &+ 3)
        if !options.json && speaks {
            let processes = distributed ? ", \(Distributed.size) processes" : ""
            print(
                "training on \(device) (\(device.info.deviceName))\(processes): \(data.trainCount) images, "
                    + "\(data.testCount) held out, \(steps) steps per epoch"
            )
        }
        network.setTraining(true)
        for epoch in stride(from: 1, through: epochs, by: 1) {
            let start = Date()
            var order = Array(0..<data.trainCount)
            order.shuffle(using: &rng)
            var lossSum = 0.0
            var correct = 0
            var seen = 0  // this process's examples so far
            for step in 0..<steps {
                let whole = Array(order[(step * batchSize)..<min(order.count, (step + 1) * batchSize)])
                let batch = distributed ? Array(whole[try Distributed.share(of: whole.count)]) : whole
                let (x, y, labels) = data.batch(batch, from: .train)
                let tape = DistributedGradientTape(GradientTape())
                let logits = tape.record { model(x) }
                let loss = tape.record { softmaxCrossEntropy(logits: logits, labels: y) }
                // The mean over processes of each one's loss is the whole batch's mean loss when each
                // process's mean is weighed by its share (1 when the shares are equal).
                let weight = Double(batch.count * (distributed ? Distributed.size : 1)) / Double(whole.count)
                let target = weight == 1 ? loss : tape.record { loss * weight }
                opt.update(variables, gradients: try tape.gradient(of: target, wrt: variables))
                lossSum += Double(loss.scalar) * Double(batch.count)
                correct += zip(predictions(logits), labels).filter { $0 == $1 }.count
                seen += batch.count
                if progress { drawBar(epoch, step + 1, steps, lossSum / Double(seen)) }
            }
            let seconds = Date().timeIntervalSince(start)
            if distributed {  // every process's examples
                let totals = try Distributed.allReduceChecked(
                    Tensor([lossSum, Double(correct)], dtype: .float64), op: .sum
                )
                .scalars(as: Double.self)
                (lossSum, correct) = (totals[0], Int(totals[1]))
            }
            let loss = lossSum / Double(data.trainCount)
            let accuracy = Double(correct) / Double(data.trainCount)
            guard loss.isFinite else {
                throw UserError(
                    "training diverged in epoch \(epoch): the loss is \(Format.number(loss)); try a smaller "
                        + "--learning-rate"
                )
            }
            if progress { print("\r\u{1B}[2K", terminator: "") }
            if !speaks {
                continue
            } else if options.json {
                try JSON.print(Epoch(epoch: epoch, loss: loss, accuracy: accuracy, seconds: seconds))
            } else {
                print(
                    String(
                        format: "epoch %2ld/%ld  loss %.4f  train accuracy %5.1f%%  %.2f s", epoch, epochs, loss,
                        100 * accuracy, seconds))
            }
        }
        network.setTraining(false)
        let (x, _, labels) = data.batch(Array(0..<data.testCount), from: .test)
        let right = zip(predictions(model(x)), labels).filter { $0 == $1 }.count
        let accuracy = Double(right) / Double(data.testCount)
        if !speaks {
            return
        } else if options.json {
            try JSON.print(Summary(heldOutAccuracy: accuracy, heldOut: data.testCount, device: device.name))
        } else {
            print(String(format: "held-out accuracy: %.1f%% (%ld of %ld)", 100 * accuracy, right, data.testCount))
        }
        if let save { try saveWeights(network, to: save) }  // after the results, which a failure must not hide
    }

    /// The network of `--model`, its weights from `seed`.
    func makeModel() -> Sequential {
        if model == "cnn" {
            return Sequential([
                Conv2D(filterShape: [3, 3, 1, 16], padding: .same, activation: { relu($0) }, seed: seed &+ 1),
                MaxPool2D(size: (2, 2)),
                Conv2D(filterShape: [3, 3, 16, 32], padding: .same, activation: { relu($0) }, seed: seed &+ 2),
                MaxPool2D(size: (2, 2)), Flatten(), Dense(inputSize: 128, outputSize: 10, seed: seed &+ 3),
            ])
        }
        return Sequential([
            Dense(inputSize: 64, outputSize: hidden, activation: { relu($0) }, seed: seed &+ 1),
            Dense(inputSize: hidden, outputSize: 10, seed: seed &+ 2),
        ])
    }

    /// Writes the weights to `path`; when that fails (the disk filled while training), to a file
    /// beside it or in the working directory or the temporary folder, and the error says where they are.
    func saveWeights(_ network: Sequential, to path: String) throws {
        do { return try network.saveWeights(to: URL(fileURLWithPath: path)) } catch let first {
            let name = "tapecl-weights-\(getpid()).safetensors"
            let places = [
                URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(name),
                URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(name),
                FileManager.default.temporaryDirectory.appendingPathComponent(name),
            ]
            for place in places where (try? network.saveWeights(to: place)) != nil {
                throw UserError("--save: \(first); the trained weights are in \(place.path) instead")
            }
            throw UserError("--save: \(first); the weights could not be written anywhere else either")
        }
    }

    /// Sets `network`'s variables from the file, which must hold exactly those names and shapes.
    func loadWeights(_ path: String, into network: Sequential) throws {
        do { try network.loadWeights(from: URL(fileURLWithPath: path)) } catch TapeError.shape(let problems) {
            throw UserError("--load: \(problems) (--model \(model))")
        } catch {
            throw UserError("--load: \(error)")  // the message names the file
        }
    }

    /// One `--json` line per epoch.
    struct Epoch: Encodable {
        let epoch: Int
        let loss: Double
        let accuracy: Double
        let seconds: Double
    }

    /// The last `--json` line.
    struct Summary: Encodable {
        let heldOutAccuracy: Double
        let heldOut: Int
        let device: String
    }

    /// Each row's predicted class (the first largest logit).
    func predictions(_ logits: Tensor) -> [Int] { logits.argmax(axis: -1).scalars(as: Int.self) }

    func drawBar(_ epoch: Int, _ step: Int, _ steps: Int, _ loss: Double) {
        let width = 30
        let filled = width * step / steps
        let bar =
            String(repeating: "=", count: filled) + (filled < width ? ">" : "")
            + String(repeating: " ", count: max(0, width - filled - 1))
        print(
            String(format: "\repoch %2ld/%ld [%@] %ld/%ld loss %.4f", epoch, epochs, bar, step, steps, loss),
            terminator: "")
        fflush(nil)
    }
}

/// The shipped digits (`TapeCLData`'s `Digits`): shuffled once by the seed and split 80/20.
struct DigitsData {
    enum Part { case train, test }
    let train: DataSet
    let test: DataSet
    /// Each part's labels as Swift integers, read once.
    let trainLabels: [Int]
    let testLabels: [Int]
    var trainCount: Int { train.count }
    var testCount: Int { test.count }

    init(seed: UInt64, on device: Device) throws {
        train = try Digits.load(split: .train, seed: seed, on: device)
        test = try Digits.load(split: .test, seed: seed, on: device)
        (trainLabels, testLabels) = (train.labelValues, test.labelValues)
    }

    /// The images, one-hot labels and labels of the examples at `indices` of `part`.
    func batch(_ indices: [Int], from part: Part) -> (Tensor, Tensor, [Int]) {
        let (set, all) = part == .train ? (train, trainLabels) : (test, testLabels)
        let x = set.images(at: indices)
        let l = indices.map { all[$0] }
        return (x, oneHot(Tensor(l.map { Int32($0) }, on: x.device), depth: 10), l)
    }
}
