import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

// Every example of ../shared/seeds, on every device, with the numbers TensorFlow printed there.
// Float32 results are compared exactly where TensorFlow's printed digits pin them (tol 0).

@Suite("Seed 000 and 001: GradientTape basics (Russian and Russian tutorials)")
struct SeedBasics {
    @Test(arguments: devices) func squareOfVariable(device: Device) throws {
        try withDevice(device) {
            let x = Variable(-2.0)
            let tape = GradientTape()
            let y = tape.record { pow(x, 2) }
            expectClose(try tape.gradient(of: y, wrt: x), [-4.0], shape: [], tol: 0)
        }
    }

    /// Seed 000 In[19]: w was random; its printed df[1] is y itself (d mean(y²)/dy = y for two
    /// elements), so any w with x·w + 1 = y reproduces every printed number: w = rows (0, y−1, 0).
    @Test(arguments: devices) func linearLayerMeanSquare(device: Device) throws {
        try withDevice(device) {
            let w = Variable(Tensor([[0, 0], [8.673412, -4.3174715], [0, 0]]))
            let b = Variable(Tensor.ones(shape: [2]))
            let x = Variable([[-2.0, 1.0, 3.0]])
            let tape = GradientTape()
            let loss = tape.record { () -> Tensor in
                let y = matmul(x, w) + b
                return pow(y, 2).mean()
            }
            let df = try tape.gradient(of: loss, wrt: [w, b])
            expectClose(
                df[0], [-19.346825, 6.634943, 9.673412, -3.3174715, 29.020237, -9.9524145].map(f32), shape: [3, 2],
                tol: 0)
            expectClose(df[1], [9.673412, -3.3174715].map(f32), shape: [2], tol: 0)
        }
    }

    /// Seed 001 example 02, whose w TensorFlow printed.
    @Test(arguments: devices) func linearLayerPrintedWeights(device: Device) throws {
        try withDevice(device) {
            let w = Variable(Tensor([[0.7462019, -0.00618961], [1.2371953, -1.3333826], [-0.9515552, -0.8407472]]))
            let b = Variable(Tensor.zeros(shape: [2]))
            let x = Variable([[-2.0, 1.0, 3.0]])
            let tape = GradientTape()
            let loss = tape.record { pow(matmul(x, w) + b, 2).mean() }
            let df = try tape.gradient(of: loss, wrt: [w, b])
            expectClose(
                df[0], [6.219748, 7.68649, -3.109874, -3.843245, -9.329622, -11.529736].map(f32), shape: [3, 2],
                tol: 1e-7)
            expectClose(df[1], [-3.109874, -3.843245].map(f32), shape: [2], tol: 1e-7)
        }
    }

    @Test(arguments: devices) func trainableAndConstants(device: Device) throws {
        try withDevice(device) {
            // In[20]: a non-trainable variable and a constant: both None.
            do {
                let x = Variable(-2.0, trainable: false)
                let b = Tensor(1.5)
                let tape = GradientTape()
                let y = tape.record { pow(x + b, 2) + 2 * x * b }
                let df = try tape.gradient(of: y, wrt: [x, b])
                #expect(df[0] == nil && df[1] == nil)
            }
            // In[21]: two variables: 2.0 and -5.0.
            do {
                let x = Variable(-2.0)
                let b = Variable(1.5)
                let tape = GradientTape()
                let y = tape.record { pow(x + b, 2) + 2 * x * b }
                let df = try tape.gradient(of: y, wrt: [x, b])
                expectClose(df[0], [2.0], tol: 0)
                expectClose(df[1], [-5.0], tol: 0)
            }
            // In[22]: Variable(1.5) + 1.0 is a plain tensor: 6.0 and None.
            do {
                let x = Variable(-2.0)
                let b = Variable(1.5) + 1.0
                let tape = GradientTape()
                let y = tape.record { pow(x + b, 2) + 2 * x * b }
                let df = try tape.gradient(of: y, wrt: [x, b])
                expectClose(df[0], [6.0], tol: 0)
                #expect(df[1] == nil)
            }
            // In[23]: watch_accessed_variables=False and watch(x): 2.0 and None.
            do {
                let x = Variable(-2.0)
                let b = Variable(1.5)
                let tape = GradientTape(watchAccessedVariables: false)
                let y = tape.record { () -> Tensor in
                    tape.watch(x)
                    return pow(x + b, 2) + 2 * x * b
                }
                let df = try tape.gradient(of: y, wrt: [x, b])
                expectClose(df[0], [2.0], tol: 0)
                #expect(df[1] == nil)
            }
        }
    }

    @Test(arguments: devices) func intermediatesAndPersistence(device: Device) throws {
        try withDevice(device) {
            // In[24]: gradient with respect to an intermediate: -8.0 and -16.0.
            let x = Variable(-2.0)
            do {
                let tape = GradientTape(watchAccessedVariables: false)
                tape.watch(x)
                let (y, f) = tape.record { () -> (Tensor, Tensor) in
                    let y = 2 * x
                    return (y, pow(y, 2))
                }
                let df = try tape.gradient(of: f, wrt: [y, x])
                expectClose(df[0], [-8.0], tol: 0)
                expectClose(df[1], [-16.0], tol: 0)
            }
            // In[27]: a second gradient on a non-persistent tape is an error.
            do {
                let tape = GradientTape(watchAccessedVariables: false)
                tape.watch(x)
                let (y, f) = tape.record { () -> (Tensor, Tensor) in
                    let y = 2 * x
                    return (y, pow(y, 2))
                }
                expectClose(try tape.gradient(of: f, wrt: x), [-16.0], tol: 0)
                #expect(throws: TapeError.self) { try tape.gradient(of: f, wrt: y) }
                do { _ = try tape.gradient(of: f, wrt: y) } catch {
                    #expect("\(error)".contains("not persistent") && "\(error)".contains("already used"))
                }
            }
            // In[26]: persistent: -16.0 then -8.0.
            do {
                let tape = GradientTape(persistent: true, watchAccessedVariables: false)
                tape.watch(x)
                let (y, f) = tape.record { () -> (Tensor, Tensor) in
                    let y = 2 * x
                    return (y, pow(y, 2))
                }
                expectClose(try tape.gradient(of: f, wrt: x), [-16.0], tol: 0)
                expectClose(try tape.gradient(of: f, wrt: y), [-8.0], tol: 0)
            }
        }
    }

    @Test(arguments: devices) func nonScalarTargetsAreSummed(device: Device) throws {
        try withDevice(device) {
            // In[28]: [2, 3] * x² at x = 3: 30.0.
            let x = Variable(3.0)
            let tape = GradientTape()
            let y = tape.record { Tensor([2.0, 3.0]) * pow(x, 2) }
            expectClose(try tape.gradient(of: y, wrt: x), [30.0], shape: [], tol: 0)
            // In[29]: reduce_sum([2, 3] * x²) at x = [1, 2]: [4, 12].
            let v = Variable([1.0, 2.0])
            let t2 = GradientTape()
            let z = t2.record { (Tensor([2.0, 3.0]) * pow(v, 2)).sum() }
            expectClose(try t2.gradient(of: z, wrt: v), [4.0, 12.0], shape: [2], tol: 0)
        }
    }

    /// Seed 001 examples 03 and 04.
    @Test(arguments: devices) func seed001Watching(device: Device) throws {
        try withDevice(device) {
            func run(
                xTrainable: Bool = true, bVariable: Bool = true, watchAccessed: Bool = true,
                watch: (GradientTape, Variable, any TensorConvertible) -> Void = { _, _, _ in }
            ) throws -> [Tensor?] {
                let x = Variable(Tensor(0), trainable: xTrainable)
                let b: any TensorConvertible = bVariable ? Variable(1.5) : Tensor(1.5)
                let tape = GradientTape(watchAccessedVariables: watchAccessed)
                let f = tape.record { () -> Tensor in
                    watch(tape, x, b)
                    let bt = b.tensor(like: nil)
                    return pow(x + bt, 2) + 2 * bt
                }
                return try tape.gradient(of: f, wrt: [x, b])
            }
            var df = try run(bVariable: false)  // constant b: 3.0, None
            expectClose(df[0], [3.0], tol: 0)
            #expect(df[1] == nil)
            df = try run()  // 3.0, 5.0
            expectClose(df[0], [3.0], tol: 0)
            expectClose(df[1], [5.0], tol: 0)
            df = try run(xTrainable: false)  // None, 5.0
            #expect(df[0] == nil)
            expectClose(df[1], [5.0], tol: 0)
            df = try run(watchAccessed: false)  // None, None
            #expect(df[0] == nil && df[1] == nil)
            df = try run(watchAccessed: false) { tape, x, _ in tape.watch(x) }  // 3.0, None
            expectClose(df[0], [3.0], tol: 0)
            #expect(df[1] == nil)
            df = try run(watchAccessed: false) { tape, x, b in tape.watch([x, b]) }  // 3.0, 5.0
            expectClose(df[0], [3.0], tol: 0)
            expectClose(df[1], [5.0], tol: 0)

            // Example 04: y rebound to 2x inside the tape; df/dy = 8.0.
            let x = Variable(Tensor(2))
            let tape = GradientTape(watchAccessedVariables: false)
            tape.watch(x)
            let (y, f) = tape.record { () -> (Tensor, Tensor) in
                let y = 2 * x
                return (y, y * y)
            }
            expectClose(try tape.gradient(of: f, wrt: y), [8.0], tol: 0)
        }
    }
}

@Suite("Seed 002: TensorFlow's autodiff guide")
struct SeedGuide {
    @Test(arguments: devices) func scalarsMatricesIntermediates(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(3.0)
            let t = GradientTape()
            t.watch(x)
            let y = t.record { x * x }
            expectClose(try t.gradient(of: y, wrt: x), [6.0], tol: 0)

            let v = Tensor([3.0, 3.0])
            let t2 = GradientTape()
            t2.watch(v)
            let z = t2.record { v * v }
            expectClose(z, [9, 9], tol: 0)
            expectClose(try t2.gradient(of: z, wrt: v), [6, 6], tol: 0)

            let t3 = GradientTape()
            t3.watch(v)
            let (yy, zz) = t3.record { () -> (Tensor, Tensor) in
                let y = v * v
                return (y, y * y)
            }
            expectClose(try t3.gradient(of: zz, wrt: yy), [18, 18], tol: 0)  // dz/dy = 2y = 18
        }
    }

    @Test func watchedVariablesInCreationOrder() {
        let x = Variable(2.0, name: "x")
        let y = Variable(3.0, name: "y")
        let t = GradientTape()
        _ = t.record { x + y * y }
        #expect(t.watchedVariables.map(\.name) == ["x", "y"])
    }

    @Test(arguments: devices) func persistentTape(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(3.0)
            let t = GradientTape(persistent: true)
            t.watch(x)
            let (y, z) = t.record { () -> (Tensor, Tensor) in
                let y = x * x
                return (y, y * y)
            }
            expectClose(try t.gradient(of: z, wrt: x), [108.0], tol: 0)
            expectClose(try t.gradient(of: y, wrt: x), [6.0], tol: 0)
        }
    }

    @Test(arguments: devices) func controlFlow(device: Device) throws {
        try withDevice(device) {
            func f(_ x: Tensor, _ y: Int) -> Tensor {
                var output = Tensor(1.0)
                for i in 0..<y where i > 1 && i < 5 { output = output * x }
                return output
            }
            func grad(_ x: Tensor, _ y: Int) throws -> Tensor? {
                let t = GradientTape()
                t.watch(x)
                let out = t.record { f(x, y) }
                return try t.gradient(of: out, wrt: x)
            }
            let x = Tensor(2.0)
            expectClose(try grad(x, 6), [12.0], tol: 0)
            expectClose(try grad(x, 5), [12.0], tol: 0)
            expectClose(try grad(x, 4), [4.0], tol: 0)
        }
    }

    @Test(arguments: devices) func noneGradients(device: Device) throws {
        try withDevice(device) {
            // Integers carry no gradient.
            let tape = GradientTape()
            let (x, y) = tape.record { () -> (Variable, Tensor) in
                let x = Variable(Tensor(shape: [2, 2], scalars: [Int8](repeating: 2, count: 4)))
                return (x, x * x)
            }
            #expect(y.dtype == .int8)
            expectClose(y, [4, 4, 4, 4], tol: 0)
            #expect(try tape.gradient(of: y, wrt: x) == nil)

            // Unconnected: None, or 0 with .zero.
            let a = Variable(2.0)
            let b = Variable(3.0)
            let t1 = GradientTape()
            _ = t1.record { b * b }
            #expect(try t1.gradient(of: a, wrt: b) == nil)
            let t2 = GradientTape()
            _ = t2.record { b * b }
            expectClose(try t2.gradient(of: a, wrt: b, unconnected: .zero), [0.0], tol: 0)
        }
    }

    @Test(arguments: devices) func customGradientClipsByNorm(device: Device) throws {
        try withDevice(device) {
            let clipGradients = customGradient { (y: Tensor) in (y, { dy in clipByNorm(dy, 0.5) }) }
            let v = Variable(2.0)
            let t = GradientTape()
            let output = t.record { clipGradients(v * v) }
            expectClose(try t.gradient(of: output, wrt: v), [2.0], tol: 0)
        }
    }

    @Test(arguments: devices) func higherOrder(device: Device) throws {
        try withDevice(device) {
            let x = Variable(1.0)
            let t = GradientTape()
            let dy_dx = try t.record { () -> Tensor? in
                let t2 = GradientTape()
                let y = t2.record { x * x * x }
                return try t2.gradient(of: y, wrt: x)
            }
            let d2y_dx2 = try t.gradient(of: dy_dx!, wrt: x)
            expectClose(dy_dx, [3.0], tol: 0)
            expectClose(d2y_dx2, [6.0], tol: 0)
        }
    }

    @Test(arguments: devices) func watchOnlySomeVariables(device: Device) throws {
        try withDevice(device) {
            let x = Variable(2.0)
            let y = Variable(3.0)
            let t = GradientTape(persistent: true, watchAccessedVariables: false)
            t.watch(y)
            let z = t.record { x + y * y }
            #expect(try t.gradient(of: z, wrt: x) == nil)
            expectClose(try t.gradient(of: z, wrt: y), [6.0], tol: 0)
        }
    }

    /// The guide's comment says "Will be 1", but the code computes d(y²)/dy at y = 3, which
    /// TensorFlow evaluates to 6.0: TapeCL gives what TensorFlow prints, not the comment.
    @Test(arguments: devices) func stopRecordingAndReset(device: Device) throws {
        try withDevice(device) {
            let x = Variable(2.0)
            let y = Variable(3.0)
            let t = GradientTape(persistent: true)
            let z = try t.record { () -> Tensor in
                let ySq = y * y
                try t.stopRecording {
                    expectClose(try t.gradient(of: ySq, wrt: y), [6.0], tol: 0)
                }
                let z = x + ySq
                t.reset()
                return z
            }
            #expect(try t.gradient(of: z, wrt: y) == nil)
            #expect(t.explainGradient(of: z, wrt: [y]) == [.recordedBeforeReset])
        }
    }
}

@Suite("Seed 003: gradient tapes (Chinese tutorial)")
struct SeedChinese {
    @Test(arguments: devices) func sumThenSquare(device: Device) throws {
        try withDevice(device) {
            let x = Tensor.ones(shape: [2, 2])
            let t = GradientTape()
            t.watch(x)
            let (y, z) = t.record { () -> (Tensor, Tensor) in
                let y = x.sum()
                return (y, y * y)
            }
            expectClose(y, [4.0], tol: 0)
            expectClose(z, [16.0], tol: 0)
            expectClose(try t.gradient(of: z, wrt: x), [8, 8, 8, 8], shape: [2, 2], tol: 0)
        }
    }

    @Test(arguments: devices) func secondOrderOfConstant(device: Device) throws {
        try withDevice(device) {
            let x = Tensor(3.0)
            let g = GradientTape()
            g.watch(x)
            let dy_dx = try g.record { () -> Tensor? in
                let gg = GradientTape()
                gg.watch(x)
                let y = gg.record { x * x }
                return try gg.gradient(of: y, wrt: x)
            }
            expectClose(dy_dx, [6.0], tol: 0)
            expectClose(try g.gradient(of: dy_dx!, wrt: x), [2.0], tol: 0)
        }
    }

    @Test(arguments: devices) func persistentAndCos(device: Device) throws {
        try withDevice(device) {
            let x = Variable(0.5)
            let y = Variable(4.5)
            let t = GradientTape(persistent: true)
            t.watch(x)
            let z = t.record { x * y + cos(x) }
            expectClose(try t.gradient(of: z, wrt: x), [f32(4.0205746)], tol: 0)
            expectClose(try t.gradient(of: z, wrt: y), [0.5], tol: 0)

            // Watching an unbuilt layer's (empty) variable list gives nothing: [None, None] there.
            let a = Variable(3.0)
            let b = Variable(4.0)
            let tape = GradientTape(watchAccessedVariables: false)
            tape.watch(a)
            let ya = tape.record { () -> Tensor in
                _ = pow(b, 3)
                return pow(a, 2)
            }
            expectClose(try tape.gradient(of: ya, wrt: a), [6.0], tol: 0)
            #expect(tape.watchedVariables.count == 1)
        }
    }
}

@Suite("Seed 004: derivatives, finite differences, forward and reverse mode (Spanish tutorial)")
struct SeedSpanish {
    @Test(arguments: devices) func reverseModeAndHessian(device: Device) throws {
        try withDevice(device) {
            let x = Variable(3.0)
            let y = Variable(4.0)
            let tape = GradientTape()
            let f = tape.record { x * x * y + y + 2 }
            expectClose(f, [42.0], tol: 0)
            let j = try tape.gradient(of: f, wrt: [x, y])
            expectClose(j[0], [24.0], tol: 0)
            expectClose(j[1], [10.0], tol: 0)

            // Hessian with a persistent tape computing the gradient inside its own context.
            let t = GradientTape(persistent: true)
            let (dfdx, dfdy) = try t.record { () -> (Tensor?, Tensor?) in
                let f = x * x * y + y + 2
                let g = try t.gradient(of: f, wrt: [x, y])
                return (g[0], g[1])
            }
            let row1 = try t.gradient(of: dfdx!, wrt: [x, y])
            let row2 = try t.gradient(of: dfdy!, wrt: [x, y])
            expectClose(row1[0], [8.0], tol: 0)
            expectClose(row1[1], [6.0], tol: 0)
            expectClose(row2[0], [6.0], tol: 0)
            #expect(row2[1] == nil)  // ∂²f/∂y² = 0: TensorFlow gives None
        }
    }

    @Test func finiteDifferences() {
        // The seed's forward differences approximate; central differences in float64 are close to exact.
        let g = numericalGradient(of: { xs in xs[0] * xs[0] * xs[1] + xs[1] + 2 }, at: [Tensor(3.0), Tensor(4.0)])
        expectClose(g[0], [24.0], tol: 1e-7)
        expectClose(g[1], [10.0], tol: 1e-7)
    }

    @Test(arguments: devices) func forwardModeDualNumbers(device: Device) {
        withDevice(device) {
            // z = sin(x²) at 3: cos(9)·6 ≈ -5.46761419430053 (the seed's finite difference).
            let x = Tensor(3.0, dtype: .float64)
            let acc = ForwardAccumulator(primals: [x], tangents: [Tensor(1.0, dtype: .float64)])
            let z = acc.record { sin(x * x) }
            expectClose(acc.jvp(z), [6 * Foundation.cos(9.0)], tol: 1e-12)

            // ∂f/∂x and ∂f/∂y of x²y + y + 2 at (3, 4) from dual numbers: 24 and 10.
            let a = Tensor(3.0)
            let b = Tensor(4.0)
            for (ta, tb, expected) in [(1.0, 0.0, 24.0), (0.0, 1.0, 10.0)] {
                let acc = ForwardAccumulator(
                    primals: [a, b], tangents: [Tensor(shape: [], scalars: [ta]), Tensor(shape: [], scalars: [tb])])
                let f = acc.record { a * a * b + b + 2 }
                expectClose(f, [42.0], tol: 0)
                expectClose(acc.jvp(f), [expected], tol: 0)
            }
        }
    }
}
