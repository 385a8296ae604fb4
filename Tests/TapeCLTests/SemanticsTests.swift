import Foundation
import TapeCL
import TapeCLBenchmarks
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

@Suite("GradientTape semantics")
struct SemanticsTests {
    @Test func literalsAreFloat32() {
        #expect(Tensor(3.0).dtype == .float32)
        #expect(Tensor([1, 2, 3]).dtype == .float32)
        #expect(Tensor([[1.0, 2.0], [3.0, 4.0]]).shape == [2, 2])
        #expect(Variable(-2.0).dtype == .float32)
        #expect(Tensor(3.0, dtype: .float64).dtype == .float64)
        #expect(Tensor(Int32(2)).dtype == .int32)
        #expect(Tensor(Int8(2)).dtype == .int8)
        #expect((2 * Tensor(3.0, dtype: .float64)).dtype == .float64)  // a number adopts its neighbour's dtype
    }

    @Test func variableArithmeticIsAPlainTensor() throws {
        let v = Variable(1.5)
        let t = v + 1.0
        let tape = GradientTape()
        let y = tape.record { t * t }
        #expect(try tape.gradient(of: y, wrt: t) == nil)
        #expect(tape.explainGradient(of: y, wrt: [t]) == [.notWatched])
    }

    @Test func recordIsReentrantAndRethrows() throws {
        struct Boom: Error {}
        let x = Variable(2.0)
        let tape = GradientTape()
        let y = tape.record { tape.record { x * x } * 3 }
        expectClose(try tape.gradient(of: y, wrt: x), [12], tol: 0)
        #expect(throws: Boom.self) { try GradientTape().record { throw Boom() } }
    }

    @Test func outputGradientsWeightTheTarget() throws {
        let x = Tensor([1.0, 2.0, 3.0])
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { x * x }
        expectClose(try tape.gradient(of: y, wrt: x, outputGradients: Tensor([1.0, 0.0, 2.0])), [2, 0, 12], tol: 0)
    }

    @Test func badOutputGradientsShapeThrows() {
        let x = Tensor([1.0, 2.0])
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { x * x }
        #expect(throws: TapeError.self) { try tape.gradient(of: y, wrt: x, outputGradients: Tensor([1.0])) }
    }

    @Test func broadcastGradientsAreSummedToTheInputShape() throws {
        // d/db Σ(a + b) for a [2, 3] and b [3] is 2 per element of b (tinygrad's test_broadcast_gradient).
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor([10, 20, 30])
        let tape = GradientTape()
        tape.watch([a, b])
        let y = tape.record { (a * b).sum() }
        let g = try tape.gradient(of: y, wrt: [a, b])
        expectClose(g[0], [10, 20, 30, 10, 20, 30], shape: [2, 3], tol: 0)
        expectClose(g[1], [5, 7, 9], shape: [3], tol: 0)
    }

    @Test func shapeErrorsNameTheOpAndShapes() {
        let a = Tensor.ones(shape: [2, 3], on: .host)
        let b = Tensor.ones(shape: [4], on: .host)
        #expect(throws: TapeError.shape("add: shapes [2, 3] and [4] do not broadcast")) {
            try Tensor.apply("add", [a, b])
        }
        do { _ = try Tensor.apply("matmul", [a, a]) } catch {
            #expect("\(error)".contains("matmul") && "\(error)".contains("[2, 3]"))
        }
        #expect(throws: TapeError.self) { try Tensor.apply("sin", [Tensor(Int32(1), on: .host)]) }
        #expect(throws: TapeError.self) { try Tensor.apply("sum", [a], axes: [2]) }
        #expect(throws: TapeError.self) { try Tensor.apply("nope", [a]) }
    }

    @Test(arguments: Device.openCL)
    func mixingDevicesIsAnErrorNamingBoth(device: Device) {
        let a = Tensor.ones(shape: [2], on: .host)
        let b = Tensor.ones(shape: [2], on: device)
        #expect(throws: TapeError.device("add: inputs on host and \(device); move one with to(_:)")) {
            try Tensor.apply("add", [a, b])
        }
        expectClose(a + b.to(.host), [2, 2], tol: 0)
    }

    @Test func deviceNames() throws {
        #expect(try Device.named("host") == .host)
        #expect(throws: TapeError.self) { try Device.named("opencl:99") }
        for (i, d) in Device.openCL.enumerated() {
            #expect(try Device.named("opencl:\(i)") == d)
        }
        if let first = Device.openCL.first { #expect(try Device.named("opencl") == first) }
        #expect(Device.all.first == .host)
        let inner = withDevice(.host) { Tensor(1.0).device }
        #expect(inner == .host)
    }

    @Test(arguments: devices)
    func emptyTensorsBroadcast(device: Device) throws {
        let y = try Tensor.apply(
            "add", [Tensor.zeros(shape: [2, 0], on: device), Tensor.zeros(shape: [0], on: device)])
        #expect(y.shape == [2, 0] && y.scalars.isEmpty)
        #expect(try Tensor.apply("mul", [Tensor.zeros(shape: [0], on: device), Tensor(2.0, on: device)]).shape == [0])
        #expect(throws: TapeError.shape("broadcast: [2, 3] does not broadcast to [3]")) {
            try Tensor.apply("broadcast", [Tensor.zeros(shape: [2, 3], on: device)], shape: [3])
        }
    }

    @Test func integerTensorsAreNeverRecorded() throws {
        let x = Tensor([Int32(1), 2, 3])
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { x * x }
        expectClose(y, [1, 4, 9], tol: 0)
        #expect(try tape.gradient(of: y, wrt: x) == nil)
        #expect(tape.explainGradient(of: y, wrt: [x]) == [.integerDType])
    }

    @Test func explainSaysWhyAGradientIsNil() throws {
        let x = Variable(2.0)
        let frozen = Variable(3.0, trainable: false)
        let unused = Variable(1.0)
        let c = Tensor(4.0)
        let watched = Tensor(5.0)
        let early = Tensor(1.0) * 2
        let tape = GradientTape(persistent: true)
        tape.watch(watched)
        let (z, paused) = tape.record { () -> (Tensor, Tensor) in
            _ = unused.value * 0
            let p = tape.stopRecording { watched * 2 }
            return (x * frozen * c, p)
        }
        let reasons = tape.explainGradient(of: z, wrt: [x, frozen, c, unused, watched])
        #expect(reasons == [nil, .notTrainable, .notWatched, .notConnected, .usedOnlyWhileStopped])
        #expect(tape.explainGradient(of: early, wrt: [x]) == [.targetNotRecorded])
        _ = paused
        // The explanation also works after a one-shot tape has been used.
        let oneShot = GradientTape()
        let y = oneShot.record { x * frozen }
        _ = try oneShot.gradient(of: y, wrt: [x, frozen])
        #expect(oneShot.explainGradient(of: y, wrt: [x, frozen]) == [nil, .notTrainable])
        #expect(NilGradientReason.notTrainable.description.contains("trainable: false"))
    }

    @Test func assignAndOptimizerStepsAreNotRecorded() throws {
        let w = Variable(Tensor([1.0, 2.0]))
        w.assign(Tensor([3.0, 4.0]))
        expectClose(w.value, [3, 4], tol: 0)
        w.assignSub(Tensor([1.0, 1.0]))
        expectClose(w.value, [2, 3], tol: 0)
        let tape = GradientTape()
        let y = tape.record { (w * w).sum() }
        let g = try tape.gradient(of: y, wrt: w)!
        SGD(learningRate: 0.5).update([w], gradients: [g])
        expectClose(w.value, [0, 0], tol: 0)
    }
}

@Suite("Higher order, Jacobians, forward mode, custom gradients")
struct HigherOrderTests {
    @Test(arguments: devices)
    func seedHessianWithNestedTapes(device: Device) throws {
        try withDevice(device) {
            let x = Variable(3.0)
            let y = Variable(4.0)
            let outer = GradientTape(persistent: true)
            let (dx, dy) = try outer.record { () -> (Tensor?, Tensor?) in
                let inner = GradientTape()
                let f = inner.record { x * x * y + y + 2 }
                let g = try inner.gradient(of: f, wrt: [x, y])
                return (g[0], g[1])
            }
            let h1 = try outer.gradient(of: dx!, wrt: [x, y])
            let h2 = try outer.gradient(of: dy!, wrt: [x, y])
            expectClose(h1[0], [8], tol: 0)
            expectClose(h1[1], [6], tol: 0)
            expectClose(h2[0], [6], tol: 0)
            #expect(h2[1] == nil)
        }
    }

    /// Second derivatives through relu's and abs's masks are zeros and through maximum's nil, as
    /// TensorFlow 2 prints them at x = [1.5, -2] (nested tf.GradientTape): tf.nn.relu [0. 0.],
    /// tf.abs [0. 0.], tf.nn.relu(x) * x [2. 0.], tf.maximum(x, 0.5) None.
    @Test(arguments: devices)
    func secondDerivativesThroughMasksAreTensorFlows(device: Device) throws {
        let x = Tensor([1.5, -2.0], on: device)
        let c = Tensor([0.5, 0.5], on: device)
        func second(_ f: (Tensor) -> Tensor) throws -> [Float]? {
            let outer = GradientTape()
            outer.watch(x)
            let dy = try outer.record { () throws -> Tensor in
                let inner = GradientTape()
                inner.watch(x)
                return try #require(try inner.gradient(of: inner.record { f(x) }, wrt: x))
            }
            return try outer.gradient(of: dy, wrt: x)?.scalars
        }
        #expect(try second { relu($0) } == [0, 0])
        #expect(try second { abs($0) } == [0, 0])
        #expect(try second { relu($0) * $0 } == [2, 0])
        #expect(try second { maximum($0, c) } == nil)
    }

    @Test(arguments: devices)
    func jacobianShapesAndValues(device: Device) throws {
        try withDevice(device) {
            let x = Tensor([1.0, 2.0, 3.0])
            let w = Tensor(shape: [2, 3], scalars: [1, 0, 2, -1, 3, 1])
            let tape = GradientTape(persistent: true)
            tape.watch(x)
            let y = tape.record { matmul(w, sin(x).reshaped(to: [3, 1])).reshaped(to: [2]) }  // y = W sin(x)
            let j = try tape.jacobian(of: y, wrt: x)!
            let c = [1.0, 2.0, 3.0].map(Foundation.cos)
            expectClose(j, [1 * c[0], 0, 2 * c[2], -1 * c[0], 3 * c[1], 1 * c[2]], shape: [2, 3], tol: 1e-6)
            // Against finite differences of each output.
            for i in 0..<2 {
                let fd = numericalGradient(
                    of: { xs in
                        (matmul(w.to(.host).cast(to: .float64), sin(xs).reshaped(to: [3, 1])).reshaped(to: [2])
                            * Tensor(shape: [2], scalars: i == 0 ? [1.0, 0] : [0, 1.0], dtype: .float64, on: .host))
                    }, at: x.to(.host))
                expectClose(
                    Tensor(shape: [3], scalars: Array(j.scalars(as: Double.self)[(3 * i)..<(3 * i + 3)])), fd,
                    atol: 1e-5, rtol: 1e-5, "row \(i)")
            }
        }
    }

    @Test func jacobianOnAOneShotTapeThrowsRatherThanLie() throws {
        let x = Tensor([1.0, 2.0])
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { x * x }
        do {
            _ = try tape.jacobian(of: y, wrt: x)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("persistent"))
        }
    }

    @Test(arguments: devices)
    func batchJacobian(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Double($0) / 10 })
            let w = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
            let tape = GradientTape(persistent: true)
            tape.watch(x)
            let y = tape.record { tanh(matmul(x, w)) }  // [4, 2]
            let j = try tape.batchJacobian(of: y, wrt: x)!
            #expect(j.shape == [4, 2, 3])
            let full = try tape.jacobian(of: y, wrt: x)!  // [4, 2, 4, 3]
            let f = full.scalars
            let b = j.scalars
            for n in 0..<4 {
                for r in 0..<2 {
                    for c in 0..<3 {
                        #expect(Swift.abs(b[(n * 2 + r) * 3 + c] - f[((n * 2 + r) * 4 + n) * 3 + c]) < 1e-6)
                    }
                }
            }
            #expect(throws: TapeError.self) { try tape.batchJacobian(of: y.sum(), wrt: x) }
        }
    }

    @Test(arguments: devices)
    func forwardOverReverseHessianVectorProduct(device: Device) throws {
        try withDevice(device) {
            // f = Σ x³, H = diag(6x): Hv = 6 x v.
            let x = Tensor([1.0, -2.0, 0.5])
            let v = Tensor([1.0, 2.0, 3.0])
            let acc = ForwardAccumulator(primals: [x], tangents: [v])
            let g = try acc.record { () -> Tensor in
                let tape = GradientTape()
                tape.watch(x)
                let y = tape.record { (x * x * x).sum() }
                return try tape.gradient(of: y, wrt: x)!
            }
            expectClose(g, [3, 12, 0.75], tol: 0)
            expectClose(acc.jvp(g), [6, -24, 9], tol: 0)
        }
    }

    @Test func forwardModeMatchesReverseModeOnEveryCase() throws {
        // J·v from the JVP rules equals Σ (Jᵀw)·v ... checked as ⟨w, J v⟩ = ⟨Jᵀ w, v⟩ per op case.
        for c in opCases where c.name != "to" {
            let xs = c.inputs(c.small, dtype: .float64, on: .host)
            let vs = c.inputs(c.small, dtype: .float64, on: .host, seed: 3)
            let acc = ForwardAccumulator(primals: xs, tangents: vs)
            let tape = GradientTape()
            tape.watch(xs)
            let y = acc.record { tape.record { c.f(xs) } }
            let w = OpTableTests.weights(like: y)
            let jv = acc.jvp(y, unconnected: .zero)!
            let grads = try tape.gradient(of: y, wrt: xs, outputGradients: w, unconnected: .zero)
            let lhs = (w * jv).sum().scalars(as: Double.self)[0]
            let rhs = zip(grads, vs).map { ($0! * $1).sum().scalars(as: Double.self)[0] }.reduce(0, +)
            let tol = c.name == "cast" ? 1e-6 : 1e-9  // cast rounds through float32 on both paths
            #expect(
                Swift.abs(lhs - rhs) <= tol * max(1, Swift.abs(rhs)), "\(c.label): ⟨w, Jv⟩ = \(lhs), ⟨Jᵀw, v⟩ = \(rhs)")
        }
    }

    @Test func forwardModeSinOfSquare() {
        let x = Tensor(3.0)
        let acc = ForwardAccumulator(primals: [x], tangents: [Tensor(1.0)])
        let z = acc.record { sin(x * x) }
        expectClose(acc.jvp(z), [6 * Foundation.cos(9.0)], tol: 1e-6)
        #expect(acc.jvp(Tensor(1.0)) == nil)
    }

    @Test func customGradientWithSeveralInputsAndStopGradient() throws {
        // f(a, b) = a·b with a gradient that swaps the roles (a deliberate, visible change).
        let swapped = customGradient { (xs: [Tensor]) in (xs[0] * xs[1], { dy in [dy * xs[0], dy * xs[1]] }) }
        let a = Variable(2.0)
        let b = Variable(5.0)
        let tape = GradientTape()
        let y = tape.record { swapped([a.value, b.value]) }
        let g = try tape.gradient(of: y, wrt: [a, b])
        expectClose(g[0], [2], tol: 0)
        expectClose(g[1], [5], tol: 0)
        let t2 = GradientTape()
        let z = t2.record { stopGradient(a * a) + b }
        let g2 = try t2.gradient(of: z, wrt: [a, b])
        #expect(g2[0] == nil)
        expectClose(g2[1], [1], tol: 0)
        expectClose(clipByNorm(Tensor([3.0, 4.0]), 1.0), [0.6, 0.8], tol: 1e-6)
    }
}

@Suite("Memory the tape schedules")
struct MemoryTests {
    /// The W5 chain at a small size on a private copy of each device (its own statistics).
    @Test(arguments: devices)
    func oneShotTapeFreesIntermediatesDuringGradient(shared: Device) throws {
        let n = 1 << 14
        let bytes = n * 4
        let device = shared.isolated()
        defer { device.release() }
        try withDevice(device) {
            let x = Tensor.randomNormal(shape: [n], seed: 1)
            _ = 0.001.tensor(like: x)
            let base = device.memory.liveBytes
            device.resetPeakMemory()
            let tape = GradientTape()
            tape.watch(x)
            let target = tape.record { Workload.chain(from: x, links: 100).sum() }
            let heldBySaved = device.memory.liveBytes - base
            #expect(heldBySaved >= 99 * bytes, "the tape keeps each link's input for sin's backward (the first is x)")
            let g = try tape.gradient(of: target, wrt: x)!
            #expect(
                device.memory.liveBytes - base == g.byteCount + target.byteCount,
                "after gradient: only the gradient (and the target)")
            // Everything kept would be ≥ 4 tensors per link (y, sin y, sin y·0.001, y'); the one-shot tape peaks near 1.
            #expect(device.memory.peakBytes - base < 130 * bytes, "peak \(device.memory.peakBytes - base) B")
            let persistent = GradientTape(persistent: true)
            persistent.watch(x)
            let t2 = persistent.record { Workload.chain(from: x, links: 10).sum() }
            let before = device.memory.liveBytes
            _ = try persistent.gradient(of: t2, wrt: x)
            #expect(device.memory.liveBytes >= before, "a persistent tape keeps its entries")
        }
        #expect(device.memory.liveBytes == 4, "everything but the cached constant is freed: \(device.memory)")
    }
}
