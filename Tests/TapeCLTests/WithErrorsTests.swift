import Foundation
import TapeCL
import TapeCLData
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

/// `withErrors` (issue 32, item 1): every stop of the library becomes a thrown error inside it,
/// what follows the first error is inert, and nothing is left half-updated.
@Suite("withErrors")
struct WithErrorsTests {
    static let program = packageRoot.appendingPathComponent(".build/release/tapecl-stop")

    /// Every stop of `ErrorTests.stops`, in an optimised build, is caught with its message: the
    /// process goes on and exits 0.
    @Test(arguments: ErrorTests.stops)
    func everyReleaseBuildStopIsCaught(misuse: String, message: String) throws {
        let r = try run(Self.program, ["caught:\(misuse)"])
        #expect(r.status == 0, "\(r.err.prefix(400))")
        #expect(r.out.contains("caught: \(message)"), "\(r.out.prefix(400))")
        #expect(!r.err.contains("Fatal error"), "\(r.err.prefix(400))")
    }

    /// The stops that need a device, an environment or a memory cap, caught the same way.
    @Test func theOtherStopsAreCaught() throws {
        let unknown = try run(Self.program, ["caught:default"], environment: ["TAPECL_DEVICE": "nowhere"])
        #expect(unknown.status == 0 && unknown.out.contains("caught: TAPECL_DEVICE=nowhere names no device"))
        let huge = try run(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -v 2000000; exec '\(Self.program.path)' caught:read-back"])
        #expect(huge.status == 0, "\(huge.err.prefix(300))")
        #expect(
            huge.out.contains("caught: scalars: reading a float32 tensor of shape [268435456] into host memory")
                || huge.out.contains("caught: Tensor.full: a float32 result of shape [268435456]"),
            "\(huge.out.prefix(300))")
        guard let cl = firstOpenCLDevice() else { return }
        let layer = try run(Self.program, ["caught:dense-device", cl.name])
        #expect(layer.status == 0, "\(layer.err.prefix(300))")
        #expect(layer.out.contains("caught: Dense(2→3): the input is on \(cl.name) and the layer's variables on host"))
        let labels = try run(Self.program, ["caught:step-reads", cl.name])
        #expect(labels.out.contains("caught: sparseSoftmaxCrossEntropy: label 3 (example 1) is out of range 0..<3"))
    }

    /// After the first error: no launch, no recording, no assignment, inert gradients of the
    /// sources' shapes; the error thrown is the first one. Counted in a process of its own (the
    /// launch counter is shared by the tests running beside this one).
    @Test(arguments: devices) func nothingRunsAfterTheFirstError(device: Device) throws {
        let r = try run(Self.program, ["after-error", device.name])
        #expect(r.status == 0, "\(r.err.prefix(300))")
        #expect(
            r.out == """
                inert: true true [[4, 3], [3]]
                launches: 0
                unchanged: true
                error: Dense(4→3): the input has 5 features (shape [2, 5]) and the layer takes inputSize 4

                """, "\(r.out)")
    }

    /// An inert tensor used after its scope has ended stops, naming the scope's error.
    @Test func anInertTensorOutsideItsScopeSaysWhereItCameFrom() throws {
        let r = try run(Self.program, ["inert-escape"])
        #expect(r.status != 0)
        #expect(
            r.err.contains(
                "Fatal error: TapeCL: mul: an input is the result of an op after an error inside withErrors and has "
                    + "no elements (the error: add: shapes [3] and [2] do not broadcast)"), "\(r.err.prefix(400))")
    }

    @Test(arguments: devices) func theFirstErrorIsThrownAndTheRestIsInert(device: Device) throws {
        try withDevice(device) { () throws in
            let a = Tensor([1, 2, 3])
            var after: Tensor? = nil
            #expect(throws: TapeError.shape("add: shapes [3] and [2] do not broadcast")) {
                try withErrors {
                    _ = a + Tensor([1, 2])
                    _ = matmul(a, a)  // a second error: not the one thrown
                    after = (a * 2).sum()
                }
            }
            #expect(after?.isInert == true && after?.shape == [])
            // a scope without an error returns its value; one that throws itself throws that
            let values = try withErrors { (a * 2).scalars }
            #expect(values == [2, 4, 6])
            #expect(throws: TapeError.argument("mine")) { try withErrors { throw TapeError.argument("mine") } }
            // inert results keep the shapes the ops' rules give
            let shapes = try? withErrors { () -> [Int] in
                _ = a.reshaped(to: [2, 2])
                return matmul(Tensor.ones(shape: [2, 3]), Tensor.ones(shape: [3, 4])).shape
            }
            #expect(shapes == nil)
            var inner: [Int] = []
            _ = try? withErrors {
                _ = a.reshaped(to: [2, 2])
                let product = matmul(Tensor.ones(shape: [2, 3]), Tensor.ones(shape: [3, 4]))
                inner = product.shape
                #expect(product.scalars == [Float](repeating: 0, count: 8))  // an inert tensor reads as zeros
                #expect(a.scalars == [1, 2, 3])  // a tensor made before the error keeps its values
            }
            #expect(inner == [2, 4])
        }
    }

    @Test func scopesNest() throws {
        let outer = try withErrors { () -> Float in
            let inner = Result { try withErrors { Tensor([1, 2]).reshaped(to: [3]) } }
            #expect(throws: TapeError.self) { try inner.get() }
            return (Tensor([1, 2]) * 3).sum().scalar  // the outer scope has no error: this runs
        }
        #expect(outer == 9)
    }

    /// An optimizer step changes every variable or none: a mis-shaped gradient for the second
    /// variable leaves the first one and the optimizer's state as they were, so the next good
    /// step gives the same bits as a fresh optimizer's first one.
    @Test(arguments: devices) func anOptimizerStepIsAllOrNothing(device: Device) throws {
        try withDevice(device) { () throws in
            let optimizers: [() -> any Optimizer] = [
                { SGD(learningRate: 0.1, momentum: 0.9) }, { Adam(learningRate: 0.1) },
                { AdamW(learningRate: 0.1) }, { RMSprop(learningRate: 0.1, momentum: 0.5, centered: true) },
            ]
            for make in optimizers {
                let (a, b) = (Variable(Tensor([1, 2])), Variable(Tensor([3, 4, 5])))
                let optimizer = make()
                #expect(throws: TapeError.self) {
                    try withErrors {
                        optimizer.update([a, b], gradients: [Tensor([0.5, 0.5]), Tensor([0.5, 0.5])])
                    }
                }
                #expect(throws: TapeError.self) {
                    try withErrors { optimizer.update([a, b], gradients: [Tensor([0.5, 0.5])]) }
                }
                #expect(a.value.scalars == [1, 2] && b.value.scalars == [3, 4, 5], "\(optimizer)")
                let grads = [Tensor([0.5, -1]), Tensor([1, 2, 3])]
                optimizer.update([a, b], gradients: grads)
                let (a2, b2) = (Variable(Tensor([1, 2])), Variable(Tensor([3, 4, 5])))
                make().update([a2, b2], gradients: grads)
                #expect(a.value.scalars == a2.value.scalars && b.value.scalars == b2.value.scalars, "\(optimizer)")
            }
        }
    }

    /// The messages of the library's other stops, caught: each names the call and the argument.
    @Test func libraryStopsAreCaughtWithTheirMessages() throws {
        let digits = try Digits.load(split: .test, seed: 0, on: .host)
        let cases: [(String, () -> Void)] = [
            ("Tensor: ragged rows (lengths [2, 1])", { _ = Tensor([[1, 2], [3]]) }),
            (
                "Tensor: 3 scalars do not fill shape [2, 2] (4 elements)",
                { _ = Tensor(shape: [2, 2], scalars: [1, 2, 3]) }
            ),
            ("DataSet.batch: index 100000 is outside 0..<\(digits.count)", { _ = digits.batch([0, 100_000]) }),
            ("DataSet.batches: size must be 1 or more, not 0", { _ = digits.batches(size: 0) }),
            ("Dropout: rate 1.5 must be in [0, 1)", { _ = Dropout(rate: 1.5) }),
            (
                "Conv2D: filterShape [3, 3, 1] must be [KH, KW, Cin, Cout], each 1 or more",
                {
                    _ = Conv2D(filterShape: [3, 3, 1])
                }
            ),
            (
                "LearningRateSchedule.piecewise: 1 values for 1 boundaries; give one more value than boundaries",
                { _ = LearningRateSchedule.piecewise(boundaries: [10], values: [0.1])(3) }
            ),
            (
                "ForwardAccumulator: 1 primals but 2 tangents",
                {
                    _ = ForwardAccumulator(primals: [Tensor(1)], tangents: [Tensor(1), Tensor(2)])
                }
            ),
            (
                "Variable 'w'.assign: [3] float32 for a variable of [2] float32",
                {
                    Variable(Tensor([1, 2]), name: "w").assign(Tensor([1, 2, 3]))
                }
            ),
            (
                "customGradient: the backward returned 2 cotangents for 1 inputs",
                {
                    let f = customGradient { (x: [Tensor]) in (x[0] * 2, { dy in [dy, dy] }) }
                    let x = Tensor(3)
                    let tape = GradientTape()
                    tape.watch(x)
                    let y = tape.record { f([x]) }
                    _ = try? tape.gradient(of: y, wrt: x)
                }
            ),
            (
                "nested: 3 items for a tensor of shape [2, 2] (4 elements)",
                {
                    _ = Tensor([[1, 2], [3, 4]]).nested(["a", "b", "c"], empty: "") { $0.joined() }
                }
            ),
            (
                "SGD.update: 2 variables but 1 gradients; give one gradient (or nil) per variable",
                {
                    SGD().update([Variable(Tensor(1)), Variable(Tensor(2))], gradients: [Tensor(1)])
                }
            ),
        ]
        for (message, misuse) in cases {
            #expect(throws: TapeError.self, "\(message)") { try withErrors { misuse() } }
            do { try withErrors { misuse() } } catch { #expect("\(error)" == message) }
        }
    }

    /// `Tensor.nested` groups items by the shape, as `description` does; a scalar is its item.
    @Test func nestedGroupsByTheShape() {
        let m = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect(
            m.nested(m.scalars.map { "\(Int($0))" }, empty: "") { "(" + $0.joined(separator: " ") + ")" }
                == "((1 2 3) (4 5 6))")
        #expect(Tensor(7).nested(["7"], empty: "") { $0.joined() } == "7")
    }
}
