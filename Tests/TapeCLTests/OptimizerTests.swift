import Foundation
import TapeCL
import TapeCLNN
import Testing

/// The optimizers against PyTorch's updates from the same float32 weights and gradients
/// (`Tests/Fixtures/optimizers-torch.json`, written by `Benchmarks/peers/optimizer_fixture.py`
/// with the torch version it names), on every device; schedules and clipping against their
/// formulas (issue 32, item 5).
@Suite("optimizers and schedules")
struct OptimizerTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let name: String
            let options: [String: Double]
            let after: [[Double]]
        }
        let torch: String
        let weights: [Double]
        let gradients: [[Double]]
        let cases: [Case]
    }

    static let fixture: Fixture? = {
        let url = packageRoot.appendingPathComponent("Tests/Fixtures/optimizers-torch.json")
        return (try? Data(contentsOf: url)).flatMap { try? JSONDecoder().decode(Fixture.self, from: $0) }
    }()

    static func optimizer(_ c: Fixture.Case) -> any Optimizer {
        let o = c.options
        let lr = o["learningRate"]!
        switch c.name {
        case "adam": return Adam(learningRate: lr, epsilon: o["epsilon"]!)
        case "adamw": return AdamW(learningRate: lr, weightDecay: o["weightDecay"]!, epsilon: o["epsilon"]!)
        case "rmsprop": return RMSprop(learningRate: lr)
        case "rmsprop centered momentum": return RMSprop(learningRate: lr, momentum: o["momentum"]!, centered: true)
        case "sgd momentum": return SGD(learningRate: lr, momentum: o["momentum"]!)
        default: return Adam(learningRate: lr, epsilon: o["epsilon"]!, epsilonForm: .keras)
        }
    }

    @Test(arguments: devices) func updatesMatchPyTorch(device: Device) throws {
        let fixture = try #require(Self.fixture, "Tests/Fixtures/optimizers-torch.json is missing")
        #expect(fixture.cases.count == 6)
        for c in fixture.cases {
            try withDevice(device) {
                let w = Variable(Tensor(fixture.weights.map(Float.init)))
                let optimizer = Self.optimizer(c)
                for (t, g) in fixture.gradients.enumerated() {
                    optimizer.update([w], gradients: [Tensor(g.map(Float.init))])
                    let ours = w.value.scalars(as: Double.self)
                    let worst = zip(ours, c.after[t]).map { abs($0 - $1) / max(1e-3, abs($1)) }.max()!
                    #expect(
                        worst <= 2e-6,
                        "\(c.name) step \(t + 1) on \(device): relative \(worst) (torch \(fixture.torch))")
                }
            }
        }
    }

    /// The Keras form differs from PyTorch's where `√v̂` is near ε (the gradient's zero component).
    @Test func theTwoEpsilonFormsDiffer() throws {
        let (a, b) = (Variable(Tensor([1, 1])), Variable(Tensor([1, 1])))
        let (pyTorch, keras) = (
            Adam(learningRate: 0.1, epsilon: 1e-8), Adam(learningRate: 0.1, epsilon: 1e-8, epsilonForm: .keras)
        )
        for _ in 0..<3 {
            pyTorch.update([a], gradients: [Tensor([1e-9, 1])])
            keras.update([b], gradients: [Tensor([1e-9, 1])])
        }
        #expect(a.value.scalars[0] != b.value.scalars[0])
        #expect(abs(a.value.scalars[1] - b.value.scalars[1]) < 1e-6)
    }

    @Test func schedulesFollowKerasFormulas() {
        let cosine = LearningRateSchedule.cosineDecay(initial: 0.1, steps: 100, warmup: 10)
        #expect(cosine(0) == 0 && cosine(5) == 0.05 && cosine(10) == 0.1)
        #expect(abs(cosine(60) - 0.05) < 1e-15 && cosine(110) == 0 && cosine(500) == 0)
        let plain = LearningRateSchedule.cosineDecay(initial: 1, steps: 4)
        #expect(plain(0) == 1 && abs(plain(1) - (1 + cos(Double.pi / 4)) / 2) < 1e-15)
        let piecewise = LearningRateSchedule.piecewise(boundaries: [10, 20], values: [1, 0.5, 0.1])
        #expect([0, 10, 11, 20, 21, 1000].map { piecewise($0) } == [1, 1, 0.5, 0.5, 0.1, 0.1])
        #expect(LearningRateSchedule.constant(0.3)(7) == 0.3)
    }

    @Test(arguments: devices) func clipByGlobalNormScalesAsTensorFlow(device: Device) throws {
        try withDevice(device) {
            let gradients: [Tensor?] = [Tensor([3, 0]), nil, Tensor([[4]])]  // global norm 5
            let (clipped, norm) = clipByGlobalNorm(gradients, clipNorm: 2)
            #expect(abs(norm.scalar - 5) < 1e-6)
            #expect(clipped[1] == nil)
            #expect(clipped[0]!.scalars.map { ($0 * 1e5).rounded() / 1e5 } == [1.2, 0])
            #expect(abs(clipped[2]!.scalars[0] - 1.6) < 1e-6)
            let (same, _) = clipByGlobalNorm(gradients, clipNorm: 10)  // under the limit: unchanged
            #expect(same[0]!.scalars == [3, 0] && same[2]!.scalars == [4])
        }
    }
}

/// A training step validates its labels without waiting on the device (issue 32, item 6): labels
/// and ids made from host values carry their range and (ids) a host copy, so the loss, the
/// embedding's gather, their gradients and the update read nothing back (the loss read its labels
/// back on every call, the gather's gradient its ids). Counted in a process of its own (`tapecl-stop
/// step-reads`): the device's read counter is shared by the tests running beside this one.
@Suite("no reads in a training step")
struct ReadTests {
    @Test(arguments: devices) func aStepWithHostLabelsReadsNothing(device: Device) throws {
        let r = try run(packageRoot.appendingPathComponent(".build/release/tapecl-stop"), ["step-reads", device.name])
        #expect(r.status == 0, "\(r.err.prefix(300))")
        #expect(r.out == "reads in a step: 0\nlabel out of range caught\n", "\(r.out)")
    }
}
