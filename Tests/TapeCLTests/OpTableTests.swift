import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// op × device × {finite differences, host}: every op of the table, forward and backward, and second order.
@Suite("Op table")
struct OpTableTests {
    @Test func everyOpHasACase() {
        let covered = Set(opCases.map(\.name))
        let untested = Op.all.filter { $0.differentiable && !covered.contains($0.name) }.map(\.name)
        #expect(untested.isEmpty, "ops without a test case in OpCases.swift: \(untested)")
    }

    /// The cotangent used everywhere: a fixed, non-uniform weighting of the output.
    static func weights(like y: Tensor) -> Tensor {
        var rng = SplitMix64(seed: 99)
        return Tensor(
            shape: y.shape, scalars: (0..<y.count).map { _ in (0.25 + rng.nextUnit()) }, dtype: y.dtype, on: y.device)
    }

    static func gradients(_ c: OpCase, _ xs: [Tensor]) throws -> (Tensor, [Tensor?]) {
        let tape = GradientTape()
        tape.watch(xs)
        let y = tape.record { c.f(xs) }
        return (y, try tape.gradient(of: y, wrt: xs, outputGradients: weights(like: y)))
    }

    /// Reverse mode in float64 against central differences in float64, on odd shapes (cases
    /// over 10,000 elements, there to exercise a kernel path, use their small shapes here).
    @Test(arguments: opCases)
    func gradientMatchesFiniteDifferences(_ c: OpCase) throws {
        let shapes = c.shapes.map { $0.reduce(1, *) }.max()! > 10_000 ? c.small : c.shapes
        let xs = c.inputs(shapes, dtype: .float64, on: .host)
        let (y, grads) = try Self.gradients(c, xs)
        let w = Self.weights(like: y)
        let fd = numericalGradient(of: { (c.f($0) * w.to(.host)) }, at: xs, epsilon: c.epsilon)
        for (i, g) in grads.enumerated() {
            expectClose(g, fd[i], atol: 1e-6, rtol: 1e-6, "\(c.label) input \(i)")
        }
    }

    /// Each OpenCL device, and the tests' loopback backend, against the host: forward and backward,
    /// float32 and float64.
    @Test(arguments: opCases, Device.openCL + [loopback])
    func deviceMatchesHost(_ c: OpCase, device: Device) throws {
        for dtype in [DType.float32, .float64] where dtype == .float32 || device.info.supportsFloat64 {
            let tol = Op.named(c.name)!.tolerance.bounds(dtype)
            let (yd, gd) = try Self.gradients(c, c.inputs(c.shapes, dtype: dtype, on: device))
            let (yh, gh) = try Self.gradients(c, c.inputs(c.shapes, dtype: dtype, on: .host))
            #expect(yd.device == device)
            expectClose(yd, yh, atol: tol.forward, rtol: tol.forward, "\(c.label) \(dtype) forward on \(device)")
            for i in gd.indices {
                expectClose(
                    gd[i], gh[i], atol: tol.gradient, rtol: tol.gradient,
                    "\(c.label) \(dtype) gradient \(i) on \(device)")
            }
        }
    }

    /// Second order through nested tapes, against finite differences of the first gradient, on every
    /// device and the loopback backend.
    @Test(arguments: opCases, devices + [loopback])
    func secondOrderMatchesFiniteDifferences(_ c: OpCase, device: Device) throws {
        if c.name == "to" && device == .host { return }  // nothing to move
        let xs = c.inputs(c.small, dtype: .float64, on: device)
        // h(x) = Σ ∇ₓ(Σ w·f(x)) · v for fixed v: its gradient is the Hessian-vector product Hv.
        func h(_ xs: [Tensor]) throws -> Tensor {
            let (_, grads) = try Self.gradients(c, xs)
            return zip(grads, xs).reduce(Tensor(0.0, dtype: .float64, on: xs[0].device)) { acc, pair in
                guard let g = pair.0 else { return acc }
                return acc + (g * Self.weights(like: pair.1)).sum()
            }
        }
        let outer = GradientTape()
        outer.watch(xs)
        let value = try outer.record { try h(xs) }
        let hv = try outer.gradient(of: value, wrt: xs)
        let fd = try numericalGradient(
            of: { try h($0.map { $0.to(device) }).to(.host) }, at: xs.map { $0.to(.host) }, epsilon: c.epsilon)
        for i in xs.indices {
            if let g = hv[i] {
                expectClose(
                    g.to(.host), fd[i], atol: 1e-5, rtol: 1e-5, "\(c.label) second order, input \(i), on \(device)")
            } else {
                // nil: the first gradient does not depend on this input (piecewise-linear ops).
                #expect(
                    fd[i].scalars(as: Double.self).allSatisfy { Swift.abs($0) < 1e-6 },
                    "\(c.label): nil second order but FD is not zero")
            }
        }
    }

    /// 0/1 masks (step and sign, with a zero gradient): the forward must agree across devices.
    @Test(arguments: ["step", "sign"], Device.openCL + [loopback])
    func masksMatchHost(_ name: String, device: Device) throws {
        let op = try #require(Op.named(name))
        let c = OpCase(name, shapes: [[M, N]]) { _ in Tensor(0) }
        let xs = c.inputs(c.shapes, dtype: .float32, on: .host)
        let host = try op.apply(xs)
        let dev = try op.apply(xs.map { $0.to(device) })
        expectClose(dev, host, atol: 0, rtol: 0, name)
    }

    /// The loopback backend is a device of its own: its family names it, its tensors live in its
    /// memory, its launches run there (counted), and its results come back to the host.
    @Test func aBackendFromOutsideTheRuntimeRunsTheOps() throws {
        #expect(loopback.name == "loopback:0")
        #expect(loopback != .host)
        let backend = try #require(loopback.core.backend as? LoopbackBackend)
        let before = backend.launches.load(ordering: .relaxed)
        let x = Tensor(shape: [2, 3], scalars: [1.0, 2, 3, 4, 5, 6] as [Float], on: loopback)
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { (x * x).sum() }
        let dx = try #require(try tape.gradient(of: y, wrt: [x])[0])
        #expect(y.device == loopback && dx.device == loopback)
        #expect(y.scalars(as: Float.self) == [91])
        #expect(dx.scalars(as: Float.self) == [2, 4, 6, 8, 10, 12])
        #expect(backend.launches.load(ordering: .relaxed) > before)
        #expect(loopback.memory.liveBytes > 0)
    }

    /// A registered family's devices resolve by the family's name as OpenCL's do: the first device,
    /// `:N`, `:cpu`, `:gpu` (none here), and nothing for a number or family that is not there.
    @Test func aFamilysDevicesResolveByItsName() {
        let families = [(family: loopbackFamily, devices: [loopback])]
        func lookup(_ name: String) -> Device? { Registry.lookup(name, host: .host, families: families) }
        #expect(lookup("loopback") == loopback)
        #expect(lookup("loopback:0") == loopback)
        #expect(lookup(" LOOPBACK:cpu ") == loopback)
        #expect(lookup("loopback:gpu") == nil)
        #expect(lookup("loopback:1") == nil)
        #expect(lookup("loopback:x") == nil)
        #expect(lookup("metal:0") == nil)
        #expect(lookup("host") == .host)
    }

    /// An op applied with another family's parameters is an error naming both (the one check of
    /// an op's parameters), never a kernel reading the wrong fields.
    @Test func parametersOfAnotherFamilyAreAnError() throws {
        let x = Tensor.ones(shape: [2, 3], on: .host)
        let reshape = try #require(Op.named("reshape"))
        #expect(throws: TapeError.argument("reshape: takes shape parameters, given none")) {
            try reshape.apply([x])
        }
        let sum = try #require(Op.named("sum"))
        #expect(throws: TapeError.argument("sum: takes reduction parameters, given transposes")) {
            try sum.apply([x], .transposes(Transposes(a: false, b: false)))
        }
        expectClose(try sum.apply([x], .reduction(Reduction(axes: [1], keepDims: false))), [3, 3], tol: 0)
    }
}
