import TapeCL
@_spi(Runtime) import TapeCLRuntime

// The special-value pass of the ops that combine elements: reductions, normalising functions, the
// matrix product and pooling, on rows holding NaN, ±inf, ±1e30, denormals and saturated values.
extension SpecialValueCheck {
    /// Eight rows of three: NaN among finite values, infinities of one sign and of both, sums that
    /// overflow, signed zeros and a denormal, and arguments that saturate exp.
    static let rows: [[Double]] = [
        [1, .nan, 2], [.infinity, 1, 2], [-.infinity, -.infinity, 0], [1e30, 1e30, -1e30],
        [0, -0.0, 1e-40], [100, -100, 1000], [.infinity, -.infinity, 1], [-1e30, 88.5, -88.5],
    ]

    /// Each combining op through the public API, with its bound (``Tolerance``).
    static let combiningOps: [(name: String, tolerance: Tolerance, f: @Sendable (Tensor) -> Tensor)] = [
        ("sum", .summed, { $0.sum(axes: [1]) }),
        ("mean", .summed, { $0.mean(axes: [1]) }),
        ("max", .exact, { $0.max(axes: [1]) }),
        ("min", .exact, { $0.min(axes: [1]) }),
        ("logSumExp", .library, { $0.logSumExp(axes: [1]) }),
        ("softmax", .library, { softmax($0, axis: -1) }),
        ("logSoftmax", .library, { logSoftmax($0, axis: -1) }),
        ("matmul", .matmul, { matmul($0, Tensor.ones(shape: [3, 2], dtype: $0.dtype, on: $0.device)) }),
        ("maxPool2d", .exact, { maxPool2d($0.reshaped(to: [1, 8, 3, 1]), size: (2, 3), strides: (2, 3)) }),
        ("avgPool2d", .summed, { avgPool2d($0.reshaped(to: [1, 8, 3, 1]), size: (2, 3), strides: (2, 3)) }),
    ]

    /// Every combining op on ``rows``: value, and the gradient of its sum, against the host.
    static func combining(on device: Device) -> [Result] {
        var results: [Result] = []
        let flat = rows.flatMap { $0 }
        for dtype in [DType.float32, .float64] where dtype == .float32 || device.info.supportsFloat64 {
            let ulp = dtype == .float32 ? Double(Float.ulpOfOne) : Double.ulpOfOne
            for op in combiningOps {
                func evaluate(on d: Device) throws -> (value: [Double], gradient: [Double]?) {
                    let x = Tensor(shape: [8, 3], scalars: flat, dtype: dtype, on: d)
                    let tape = GradientTape()
                    tape.watch(x)
                    let y = tape.record { op.f(x) }
                    let dx = try tape.gradient(of: y.sum(), wrt: x)
                    return (y.scalars(as: Double.self), dx?.scalars(as: Double.self))
                }
                do {
                    let (host, dev) = (try evaluate(on: .host), try evaluate(on: device))
                    let bounds = op.tolerance.bounds(dtype)
                    results.append(
                        compare(
                            dev.value, host.value, op: op.name, what: "\(dtype) value", bound: bounds.forward, ulp: ulp
                        ) {
                            "output \($0)"
                        })
                    if let d = dev.gradient, let h = host.gradient {
                        results.append(
                            compare(d, h, op: op.name, what: "\(dtype) gradient", bound: bounds.gradient, ulp: ulp) {
                                "x = \(flat[$0]) (row \($0 / 3))"
                            })
                    } else if (dev.gradient == nil) != (host.gradient == nil) {
                        results.append(failure(op.name, "\(dtype) gradient", "nil on one side only"))
                    }
                } catch {
                    results.append(failure(op.name, "\(dtype)", "\(error)"))
                }
            }
        }
        return results
    }
}
