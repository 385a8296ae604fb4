import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime

/// `tapecl check`'s second pass: what random shapes never sample. Every elementwise op of the table
/// at special values (±0, ±1, denormals, ±1e30, ±inf, NaN, and arguments deep in saturation: tanh,
/// sigmoid, exp, log and pow at ±9.5, ±20, ±88.5, ±100, ±1000), value and gradient, in float32 and
/// float64; and the ops that take other dtypes (casts among all five, comparisons, reductions,
/// gather, select) on int32, int8 and bool values, which must agree exactly.
///
/// The contract, TF's: a result that is NaN, +inf or -inf on the host is the same on the device, and
/// a finite one is finite there and within the op's bound (``Tolerance``: ulps of max(1, |host|), so
/// a device that flushes denormals to zero still agrees).
package enum SpecialValueCheck {
    package struct Result: Sendable {
        /// The op, and what was compared: `float32 value`, `float64 gradient`, `int8 → bool`, ….
        package let op: String
        package let what: String
        /// Elements compared, and the worst finite difference in ulps of max(1, |host|).
        package let count: Int
        package let worstUlps: Double
        package let boundUlps: Double
        /// The first disagreement (input, device value, host value), or why the pass could not run.
        package let mismatch: String?
        package var ok: Bool { mismatch == nil }
    }

    /// The special inputs, in float64 (each is converted to the dtype under test).
    static let values: [Double] = [
        0, -0.0, 1, -1, 0.5, -2, 1e-40, -1e-40, 1e-310, 9.5, -9.5, 20, -20, 88.5, -88.5, 100, -100, 1000, -1000,
        1e30, -1e30, .infinity, -.infinity, .nan,
    ]

    /// Every pass on `device` against the host.
    package static func run(on device: Device) -> [Result] {
        var results: [Result] = []
        for op in Op.all {
            for dtype in [DType.float32, .float64] where dtype == .float32 || device.info.supportsFloat64 {
                switch op.forward {
                case .unary: results += elementwise(op, dtype, arity: 1, on: device)
                case .binary: results += elementwise(op, dtype, arity: 2, on: device)
                default: break
                }
            }
        }
        return results + combining(on: device) + dtypes(on: device)
    }

    /// An elementwise op on every special value (a binary op on every pair), value and gradient.
    static func elementwise(_ op: Op, _ dtype: DType, arity: Int, on device: Device) -> [Result] {
        let n = values.count
        let inputs: [[Double]] =
            arity == 1 ? [values] : [values.flatMap { a in [Double](repeating: a, count: n) }, values * n]
        func evaluate(on d: Device) throws -> (value: [Double], gradients: [[Double]?]) {
            let xs = inputs.map { Tensor($0, dtype: dtype, on: d) }
            let tape = GradientTape()
            tape.watch(xs)
            let y = try tape.record { try op.apply(xs) }
            let grads = op.differentiable && dtype.isFloatingPoint ? try tape.gradient(of: y, wrt: xs) : []
            return (y.scalars(as: Double.self), grads.map { $0?.scalars(as: Double.self) })
        }
        let bounds = op.tolerance.bounds(dtype)
        let ulp = dtype == .float32 ? Double(Float.ulpOfOne) : Double.ulpOfOne
        do {
            let host = try evaluate(on: .host)
            let dev = try evaluate(on: device)
            var results = [
                compare(dev.value, host.value, op: op.name, what: "\(dtype) value", bound: bounds.forward, ulp: ulp) {
                    describe(inputs, $0)
                }
            ]
            for (i, (d, h)) in zip(dev.gradients, host.gradients).enumerated() {
                guard let d, let h else {
                    if (d == nil) != (h == nil) {
                        results.append(failure(op.name, "\(dtype) gradient \(i)", "nil on one side only"))
                    }
                    continue
                }
                results.append(
                    compare(d, h, op: op.name, what: "\(dtype) gradient \(i)", bound: bounds.gradient, ulp: ulp) {
                        describe(inputs, $0)
                    })
            }
            return results
        } catch {
            return [failure(op.name, "\(dtype)", "\(error)")]
        }
    }

    /// Casts among all dtypes, comparisons, reductions, gather and select on integer and bool values:
    /// exact on every device.
    static func dtypes(on device: Device) -> [Result] {
        let ints: [Double] = [0, 1, -1, 2, -128, 127, 100, -100, 2_147_483_647, -2_147_483_648, 255, 7]
        let floats: [Double] = [
            0, -0.0, 1, -1, 0.5, -0.5, 2.75, -2.75, 127.9, -128.9, 3e9, -3e9, 1e30, .nan, .infinity,
        ]
        let all = DType.allCases.filter { $0 != .float64 || device.info.supportsFloat64 }
        var cases: [(op: String, what: String, run: (Device) throws -> Tensor)] = []
        for from in all {
            for to in all where to != from {
                cases.append(
                    (
                        "cast", "\(from) → \(to)",
                        { Tensor(from.isFloatingPoint ? floats : ints, dtype: from, on: $0).cast(to: to) }
                    ))
            }
        }
        for dtype in [DType.int32, .int8] {
            let x = { (d: Device) in Tensor(shape: [3, 4], scalars: ints, dtype: dtype, on: d) }
            let y = { (d: Device) in Tensor(shape: [4], scalars: [1, -1, 127, 0], dtype: dtype, on: d) }
            let op = { (name: String) in Op.named(name)! }
            cases += [
                ("compareGreater", "\(dtype)", { try Tensor.compared(op("compareGreater"), x($0), y($0)) }),
                ("compareEqual", "\(dtype)", { try Tensor.compared(op("compareEqual"), x($0), y($0)) }),
                ("compareLessEqual", "\(dtype)", { try Tensor.compared(op("compareLessEqual"), x($0), y($0)) }),
                ("sum", "\(dtype), axis 1", { try x($0).reduce(op("sum"), axes: [1], keepDims: false) }),
                ("max", "\(dtype), axis 0", { try x($0).reduce(op("max"), axes: [0], keepDims: false) }),
                ("max", "\(dtype), all", { try x($0).reduce(op("max"), axes: nil, keepDims: false) }),
                (
                    "select", "\(dtype)",
                    { try Tensor.selected(Tensor.compared(op("compareGreater"), x($0), y($0)), x($0), y($0)) }
                ),
                (
                    "gather", "\(dtype)",
                    { try Tensor.gathered(x($0), Tensor(shape: [3], scalars: [Int32(2), 0, 2], on: $0), axis: 0) }
                ),
                ("transpose", "\(dtype)", { try x($0).transposedChecked(permutation: [1, 0]) }),
                ("concat", "\(dtype)", { try Tensor.concatenated([x($0), x($0)], axis: 1) }),
            ]
        }
        return cases.map { c in
            do {
                let host = try c.run(.host)
                let before = device.fallbacks.count
                let dev = try c.run(device)
                if device.fallbacks.count > before {
                    return failure(c.op, c.what, "ran on the host, not on \(device)")
                }
                let (h, d) = (host.scalars(as: Double.self), dev.scalars(as: Double.self))
                guard host.shape == dev.shape, host.dtype == dev.dtype else {
                    return failure(c.op, c.what, "\(dev.dtype) \(dev.shape) vs the host's \(host.dtype) \(host.shape)")
                }
                let at = h.indices.first { !(h[$0] == d[$0] || h[$0].isNaN && d[$0].isNaN) }
                return Result(
                    op: c.op, what: c.what, count: h.count, worstUlps: at == nil ? 0 : .infinity, boundUlps: 0,
                    mismatch: at.map { "element \($0): \(d[$0]) vs the host's \(h[$0])" })
            } catch {
                return failure(c.op, c.what, "\(error)")
            }
        }
    }

    /// Compares device values `d` with the host's `h`: non-finite classes exactly, finite values within
    /// `bound` (relative to max(1, |host|)), reporting the worst in ulps.
    package static func compare(
        _ d: [Double], _ h: [Double], op: String, what: String, bound: Double, ulp: Double,
        describe: (Int) -> String
    ) -> Result {
        var worst = 0.0
        var mismatch: String?
        for i in h.indices {
            let (x, y) = (d[i], h[i])
            let agrees: Bool
            if y.isNaN || x.isNaN || y.isInfinite || x.isInfinite {
                agrees = (x.isNaN && y.isNaN) || x == y
            } else {
                let e = Swift.abs(x - y) / Swift.max(1, Swift.abs(y))
                worst = Swift.max(worst, e / ulp)
                agrees = e <= bound
            }
            if !agrees && mismatch == nil { mismatch = "at \(describe(i)): \(x) vs the host's \(y)" }
        }
        return Result(op: op, what: what, count: h.count, worstUlps: worst, boundUlps: bound / ulp, mismatch: mismatch)
    }

    static func describe(_ inputs: [[Double]], _ i: Int) -> String {
        inputs.count == 1 ? "x = \(inputs[0][i])" : "(\(inputs[0][i]), \(inputs[1][i]))"
    }

    static func failure(_ op: String, _ what: String, _ why: String) -> Result {
        Result(op: op, what: what, count: 0, worstUlps: .infinity, boundUlps: 0, mismatch: why)
    }
}

extension Array where Element == Double {
    fileprivate static func * (a: [Double], n: Int) -> [Double] { (0..<n).flatMap { _ in a } }
}
