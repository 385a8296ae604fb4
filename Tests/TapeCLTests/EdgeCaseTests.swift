import Foundation
import TapeCL
import TapeCLCheck
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

/// What the op table's random cases do not reach: tensors with no elements, special values, saturation,
/// and dtypes other than float, on every device (each must give the host's answer, and the host TF's).
@Suite("Edge cases")
struct EdgeCaseTests {
    /// The gradient of `f` at `x` (summed target), on x's device.
    static func gradient(_ x: Tensor, _ f: (Tensor) -> Tensor) throws -> (Tensor, Tensor?) {
        let tape = GradientTape()
        tape.watch(x)
        let y = tape.record { f(x) }
        return (y, try tape.gradient(of: y, wrt: x))
    }

    /// Every op on tensors with no elements gives an empty result (TF's), forward and backward,
    /// on every device: nothing divides by a zero dimension.
    @Test(arguments: devices)
    func emptyTensorsFlowThroughEveryOpFamily(device: Device) throws {
        try withDevice(device) {
            let e = Tensor.zeros(shape: [4, 0])
            #expect(e.transposed().shape == [0, 4])
            #expect(e.transposed().scalars.isEmpty)
            #expect(Tensor.ones(shape: [4, 1]).broadcast(to: [4, 0]).shape == [4, 0])
            #expect((Tensor.ones(shape: [4, 1]) + e).shape == [4, 0])
            #expect(concat([Tensor.zeros(shape: [2, 0]), Tensor.zeros(shape: [2, 0])], axis: 1).shape == [2, 0])
            #expect(
                concat([Tensor.zeros(shape: [2, 0]), Tensor.ones(shape: [2, 3])], axis: 1).scalars == [
                    1, 1, 1, 1, 1, 1,
                ])

            let (s, ds) = try Self.gradient(e) { $0.sum(axes: [0]) }
            #expect(s.shape == [0])
            #expect(ds?.shape == [4, 0])
            let (s1, ds1) = try Self.gradient(e) { $0.sum(axes: [1]) }
            #expect(s1.scalars == [0, 0, 0, 0])  // a sum over nothing is 0
            #expect(ds1?.shape == [4, 0])
            // a mean over nothing is NaN, a max over nothing -inf (TF's identity of the reduction)
            #expect(e.mean(axes: [1]).scalars.allSatisfy { $0.isNaN })
            #expect(e.max(axes: [1]).scalars.allSatisfy { $0 == -.infinity })

            for shape in [[0, 5], [2, 0]] {
                let x = Tensor.zeros(shape: shape)
                let (y, dy) = try Self.gradient(x) { softmax($0) }
                #expect(y.shape == shape)
                #expect(dy?.shape == shape)
                let (l, dl) = try Self.gradient(x) { logSoftmax($0) }
                #expect(l.shape == shape)
                #expect(dl?.shape == shape)
                let (z, dz) = try Self.gradient(x) { $0.logSumExp(axes: [-1]) }
                #expect(z.shape == [shape[0]])
                #expect(dz?.shape == shape)
            }
            // logSumExp over nothing is -inf (log 0)
            #expect(Tensor.zeros(shape: [2, 0]).logSumExp(axes: [-1]).scalars == [-.infinity, -.infinity])

            let (_, dsplit) = try Self.gradient(Tensor.ones(shape: [2, 3])) { x in
                let parts = split(x, sizes: [0, 3], axis: 1)
                return parts[0].sum() + (parts[1] * 2).sum()
            }
            #expect(dsplit?.scalars == [2, 2, 2, 2, 2, 2])

            let norm = LayerNorm(featureCount: 3)
            let (n, dn) = try Self.gradient(Tensor.zeros(shape: [0, 3])) { norm($0) }
            #expect(n.shape == [0, 3])
            #expect(dn?.shape == [0, 3])

            let loss = sparseSoftmaxCrossEntropy(
                logits: Tensor.zeros(shape: [0, 3]), labels: Tensor(shape: [0], scalars: [Int32]()))
            #expect(loss.scalar.isNaN)  // TF: the mean of no losses

            let (c, dc) = try Self.gradient(Tensor.zeros(shape: [1, 4, 4, 0])) { x in
                conv2d(x, filter: Tensor.ones(shape: [3, 3, 0, 2]), strides: (1, 1), padding: .same)
            }
            #expect(c.shape == [1, 4, 4, 2])
            #expect(c.scalars.allSatisfy { $0 == 0 })
            #expect(dc?.shape == [1, 4, 4, 0])
            let p = maxPool2d(Tensor.zeros(shape: [0, 4, 4, 2]), size: (2, 2), strides: (2, 2))
            #expect(p.shape == [0, 2, 2, 2])
        }
    }

    /// Second order through nested tapes on tensors with no elements: empty Hessian-vector products.
    @Test(arguments: devices)
    func emptyTensorsHaveEmptySecondOrders(device: Device) throws {
        let functions: [(String, (Tensor) -> Tensor)] = [
            ("softmax", { softmax($0) }), ("logSumExp", { $0.logSumExp(axes: [-1]) }),
            ("tanh·x", { tanh($0) * $0 }), ("matmul", { matmul($0, $0.transposed()) }),
            ("mean", { $0.mean(axes: [0]) }),
        ]
        for (name, f) in functions {
            for shape in [[0, 5], [3, 0]] {
                let x = Tensor.zeros(shape: shape, on: device)
                let outer = GradientTape()
                outer.watch(x)
                let g = try outer.record { () throws -> Tensor in
                    let (_, dx) = try Self.gradient(x) { (f($0) * f($0)).sum() }
                    return try #require(dx).sum()
                }
                let h = try outer.gradient(of: g, wrt: x, unconnected: .zero)
                #expect(h?.shape == shape, "\(name) \(shape) on \(device)")
            }
        }
    }

    /// The special-value contract `tapecl check` enforces: NaN, +inf and -inf agree exactly, a finite
    /// value within the bound relative to max(1, |host|); a device that flushes a denormal still agrees.
    @Test func specialValueComparisonFollowsTheContract() {
        func agrees(_ device: [Double], _ host: [Double]) -> Bool {
            SpecialValueCheck.compare(device, host, op: "f", what: "", bound: 1e-6, ulp: 1e-7) { "\($0)" }.ok
        }
        #expect(agrees([1, .nan, .infinity, -.infinity, 0], [1, .nan, .infinity, -.infinity, 1e-40]))
        #expect(agrees([1 + 1e-7], [1]))
        #expect(!agrees([1], [.nan]))
        #expect(!agrees([.nan], [1]))
        #expect(!agrees([.infinity], [3e38]))
        #expect(!agrees([-.infinity], [.infinity]))
        #expect(!agrees([1 + 1e-5], [1]))
    }

    /// A cast to bool is `x != 0`, stored as 0 or 1, on every device (PoCL's conversion stored 255 or 2).
    @Test(arguments: devices)
    func castToBoolIsZeroOrOne(device: Device) throws {
        let x = Tensor([0, 1, 2, -1, 0.5, -0.0, .nan, .infinity], on: device)
        let b = x.cast(to: .bool)
        #expect(b.dtype == .bool)
        #expect(b.scalars(as: Int32.self) == [0, 1, 1, 1, 1, 0, 1, 1])
        #expect(b.cast(to: .float32).scalars == [0, 1, 1, 1, 1, 0, 1, 1])
        #expect(
            (b .== Tensor(Float(1), on: device).cast(to: .bool)).cast(to: .int32).scalars(as: Int32.self) == [
                0, 1, 1, 1, 1, 0, 1, 1,
            ])
        let i = Tensor(shape: [4], scalars: [Int32(0), 7, -3, 256], on: device).cast(to: .bool)
        #expect(i.cast(to: .int32).scalars(as: Int32.self) == [0, 1, 1, 1])
    }

    /// tanh saturates to ±1 exactly (TF and Eigen: clamped beyond ±9), so a saturated unit passes no gradient.
    @Test(arguments: devices)
    func tanhSaturatesToOne(device: Device) throws {
        for dtype in [DType.float32, .float64] where dtype == .float32 || device.info.supportsFloat64 {
            let x = Tensor(shape: [6], scalars: [-300, -20, -9.5, 9.5, 20, 300], dtype: dtype, on: device)
            let (y, dy) = try Self.gradient(x) { tanh($0) }
            if dtype == .float32 {
                #expect(y.scalars(as: Double.self) == [-1, -1, -1, 1, 1, 1], "\(dtype) on \(device)")
                #expect(dy?.scalars(as: Double.self) == [0, 0, 0, 0, 0, 0], "\(dtype) on \(device)")
            } else {
                #expect(y.scalars(as: Double.self)[0] == -1 && y.scalars(as: Double.self)[5] == 1)
            }
        }
    }

    /// The int32 reductions run on the device (no host fallback) and give the host's values.
    @Test(arguments: Device.openCL)
    func integerReductionsRunOnTheDevice(device: Device) throws {
        let values: [Int32] = [3, -7, 12, 0, 5, -1, 9, 2]
        let d = device.isolated()
        let x = Tensor(shape: [2, 4], scalars: values, on: d)
        let before = d.fallbacks.count
        #expect(x.max(axes: [1]).scalars(as: Int32.self) == [12, 9])
        #expect(x.min(axes: [1]).scalars(as: Int32.self) == [-7, -1])
        #expect(x.sum(axes: [1]).scalars(as: Int32.self) == [8, 15])
        #expect(x.max().scalars(as: Int32.self) == [12])
        #expect(d.fallbacks.count == before, "\(d.fallbacks.reasons)")
    }

    /// Shapes whose partial products overflow Int are refused with a one-line error, even with
    /// no elements; a shape with no elements is never described as having "0 bytes".
    @Test func overflowingShapesAreRefused() throws {
        let big = 1 << 62
        do {
            _ = try Shape.checkedBytes([0, big, big], .float32, op: "zeros")
            Issue.record("[0, 2^62, 2^62] was accepted")
        } catch let error as TapeError {
            #expect("\(error)".contains("more elements than"))
        }
        do {
            _ = try Shape.checkedBytes([big, big, 0], .float32, op: "zeros")
            Issue.record("[2^62, 2^62, 0] was accepted")
        } catch let error as TapeError {
            #expect("\(error)".contains("more elements than"))
        }
    }

    /// Max pooling propagates NaN wherever it is in the window, as `max` and `tf.nn.max_pool` do.
    @Test(arguments: devices)
    func maxPoolPropagatesNaN(device: Device) throws {
        for window: [Float] in [[.nan, 1, 2, 3], [1, 2, 3, .nan], [1, .nan, 3, 2]] {
            let x = Tensor(shape: [1, 2, 2, 1], scalars: window, on: device)
            #expect(maxPool2d(x, size: (2, 2), strides: (2, 2)).scalar.isNaN, "\(window) on \(device)")
            #expect(x.max().scalar.isNaN, "\(window) on \(device)")
        }
    }
}
