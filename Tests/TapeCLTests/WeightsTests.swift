import Foundation
import TapeCL
import TapeCLNN
import Testing

/// `saveWeights(to:)` and `loadWeights(from:)` on any layer: names from `namedVariables`, strict,
/// all or nothing (issue 32, item 3).
@Suite("weights by name")
struct WeightsTests {
    static func model(seed: UInt64, hidden: Int = 6) -> Sequential {
        Sequential([
            Conv2D(filterShape: [3, 3, 1, 2], padding: .same, activation: { relu($0) }, seed: seed), Flatten(),
            Dense(inputSize: 32, outputSize: hidden, activation: { tanh($0) }, seed: seed + 1),
            Dense(inputSize: hidden, outputSize: 3, seed: seed + 2),
        ])
    }

    /// A model saved and loaded into another of the same architecture gives the same outputs'
    /// bits, on every device.
    @Test(arguments: devices) func aModelLoadsItsOwnWeightsBitForBit(device: Device) throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.safetensors")
        try withDevice(device) {
            let (a, b) = (Self.model(seed: 1), Self.model(seed: 7))
            let x = Tensor.randomNormal(shape: [2, 4, 4, 1], seed: 3)
            try a.saveWeights(to: url)
            #expect(a(x).scalars != b(x).scalars)
            try b.loadWeights(from: url)
            #expect(a(x).scalars.map(\.bitPattern) == b(x).scalars.map(\.bitPattern))
            #expect(b.variables.allSatisfy { $0.value.device == device })
        }
    }

    /// A layer's name replaces its position in a Sequential's variable names.
    @Test func namedLayersNameTheirVariables() throws {
        let model = Sequential([
            Conv2D(filterShape: [3, 3, 1, 2], name: "features"), Flatten(),
            Dense(inputSize: 8, outputSize: 3, name: "head"), LayerNorm(featureCount: 3),
        ])
        #expect(
            model.namedVariables.keys.sorted() == [
                "3.beta", "3.gamma", "features.bias", "features.filter", "head.bias", "head.weight",
            ])
        #expect(model.layers[2].name == "head" && model.layers[1].name == nil)
    }

    /// A file of another architecture names every problem and assigns nothing.
    @Test func aFileThatDoesNotFitChangesNothing() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("wide.safetensors")
        try Self.model(seed: 1, hidden: 8).saveWeights(to: url)
        let narrow = Self.model(seed: 2)
        let before = narrow.variables.map(\.value.scalars)
        #expect(
            throws: TapeError.shape(
                "loadWeights: \(url.path): '2.bias' is [8] float32 in the file, [6] float32 in the layer, "
                    + "'2.weight' is [32, 8] float32 in the file, [32, 6] float32 in the layer, '3.weight' is [8, 3] "
                    + "float32 in the file, [6, 3] float32 in the layer")
        ) { try narrow.loadWeights(from: url) }
        #expect(narrow.variables.map(\.value.scalars) == before, "a partial load")
        try saveSafetensors(["0.filter": Tensor.zeros(shape: [3, 3, 1, 2]), "extra": Tensor([1])], to: url)
        #expect(
            throws: TapeError.shape(
                "loadWeights: \(url.path): 5 missing: '0.bias', '2.bias', '2.weight', '3.bias', '3.weight'; "
                    + "1 unexpected: 'extra'")
        ) { try narrow.loadWeights(from: url) }
        #expect(narrow.variables.map(\.value.scalars) == before, "a partial load")
    }
}

/// An optimizer's state saved with the weights: a run stopped after 3 steps and resumed in fresh
/// objects takes the same steps, bit for bit, as one that was never stopped (issue 32, item 3).
@Suite("optimizer state")
struct OptimizerStateTests {
    static func step(_ model: Sequential, _ optimizer: any Optimizer, _ i: Int) throws {
        let x = Tensor.randomNormal(shape: [4, 4, 4, 1], seed: UInt64(100 + i))
        let y = Tensor.randomNormal(shape: [4, 3], seed: UInt64(200 + i))
        let tape = GradientTape()
        let loss = tape.record { meanSquaredError(predicted: model(x), expected: y) }
        optimizer.update(model.variables, gradients: try tape.gradient(of: loss, wrt: model.variables))
    }

    @Test(arguments: ["adam", "sgd", "adamw", "rmsprop"], devices)
    func aResumedRunTakesTheSameSteps(optimizer name: String, device: Device) throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (weights, state) = (
            folder.appendingPathComponent("w.safetensors"), folder.appendingPathComponent("s.safetensors")
        )
        func optimizer() -> any Optimizer {
            switch name {
            case "adam": Adam(learningRate: 0.01)
            case "adamw": AdamW(learningRate: 0.01, weightDecay: 0.1)
            case "rmsprop": RMSprop(learningRate: 0.01, momentum: 0.9, centered: true)
            default: SGD(learningRate: 0.05, momentum: 0.9)
            }
        }
        try withDevice(device) {
            let (whole, wholeOptimizer) = (WeightsTests.model(seed: 1), optimizer())
            for i in 0..<6 { try Self.step(whole, wholeOptimizer, i) }

            let (first, firstOptimizer) = (WeightsTests.model(seed: 1), optimizer())
            for i in 0..<3 { try Self.step(first, firstOptimizer, i) }
            try first.saveWeights(to: weights)
            try firstOptimizer.saveState(of: first, to: state)

            let (resumed, resumedOptimizer) = (WeightsTests.model(seed: 9), optimizer())
            try resumed.loadWeights(from: weights)
            try resumedOptimizer.loadState(of: resumed, from: state)
            for i in 3..<6 { try Self.step(resumed, resumedOptimizer, i) }
            for (a, b) in zip(whole.variables, resumed.variables) {
                #expect(a.value.scalars.map(\.bitPattern) == b.value.scalars.map(\.bitPattern))
            }
        }
    }

    @Test func aStateOfAnotherModelIsRefused() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("s.safetensors")
        let (model, adam) = (WeightsTests.model(seed: 1), Adam())
        try Self.step(model, adam, 0)
        try adam.saveState(of: model, to: url)
        let other = WeightsTests.model(seed: 1, hidden: 5)
        #expect(throws: TapeError.self) { try Adam().loadState(of: other, from: url) }
        do { try Adam().loadState(of: other, from: url) } catch {
            #expect(
                "\(error)".hasPrefix("loadState: \(url.path): '2.bias.m' is [6] float32, not [5] float32"), "\(error)")
        }
    }
}
