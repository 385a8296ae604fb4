import Foundation
import TapeCL
@_spi(Runtime) import TapeCLRuntime

/// `tapecl check`: every op of the table, forward, backward and second order, on a device
/// against the host, on random shapes. Also used by the tests.
package enum OpCheck {
    package struct Result: Sendable {
        package let op: String
        package let shapes: String
        /// Largest |device − host| and the matching relative error, forward / gradient / second order.
        package var forward: (abs: Double, rel: Double) = (0, 0)
        package var gradient: (abs: Double, rel: Double)? = nil
        package var secondOrder: (abs: Double, rel: Double)? = nil
        package let tolerance: (forward: Double, gradient: Double)
        package var note = ""
        package var ok: Bool {
            forward.rel <= tolerance.forward && (gradient?.rel ?? 0) <= tolerance.gradient
                && (secondOrder?.rel ?? 0) <= 4 * tolerance.gradient && note.isEmpty
        }
    }

    /// A random case for `op`: input shapes and the function applying it through the public API.
    static func sample(_ op: Op, _ rng: inout SplitMix64) -> (shapes: [[Int]], apply: ([Tensor]) throws -> Tensor)? {
        func dim() -> Int { 1 + Int(rng.next() % 40) }
        let (m, n) = (dim(), dim())
        switch op.forward {
        case .unary:
            return ([[m, n]], { try Tensor.apply(op.name, $0) })
        case .binary:
            let patterns: [[[Int]]] = [[[m, n], [m, n]], [[m, n], [n]], [[m, 1], [1, n]], [[], [m, n]]]
            return (patterns[Int(rng.next() % 4)], { try Tensor.apply(op.name, $0) })
        case .reduce:
            let axes = [[0], [1], [2], [0, 1], [1, 2]][Int(rng.next() % 5)]
            let keep = rng.next() % 2 == 0
            return ([[3, m, n]], { try Tensor.apply(op.name, $0, axes: axes, keepDims: keep) })
        case .matmul:
            let k = dim()
            let (ta, tb) = (rng.next() % 2 == 0, rng.next() % 2 == 0)
            let batch = rng.next() % 3 == 0 ? [2] : []
            return (
                [batch + (ta ? [k, m] : [m, k]), tb ? [n, k] : [k, n]],
                { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            )
        default:
            guard let sampler = op.checkCase else { return nil }
            let c = sampler(m, n)
            return (c.shapes, c.apply)
        }
    }

    /// Runs every op on `device` and on the host, in float32.
    package static func run(on device: Device, seed: UInt64 = 1) -> [Result] {
        var rng = SplitMix64(seed: seed)
        return Op.all.map { op in
            guard let (shapes, apply) = sample(op, &rng) else {
                return Result(op: op.name, shapes: "-", tolerance: (0, 0), note: "no check case for this op")
            }
            var result = Result(
                op: op.name, shapes: shapes.map(Shape.describe).joined(separator: " "),
                tolerance: op.tolerance.bounds(.float32))
            if op.checkCase?(1, 1).needsFloat64 == true && !device.info.supportsFloat64 { return result }
            // Comparisons (the binary ops that are not recorded) get ties too: values on a half-integer grid.
            var isComparison = false
            if case .binary = op.forward { isComparison = !op.differentiable }
            let values = shapes.map { s in
                (0..<Shape.count(s)).map { _ in
                    var v =
                        op.sampleDomain.lowerBound + (op.sampleDomain.upperBound - op.sampleDomain.lowerBound)
                        * rng.nextUnit()
                    if isComparison { v = (v * 2).rounded() / 2 }  // ties, too
                    return v
                }
            }
            do {
                let host = try evaluate(apply, shapes, values, on: .host, seed: seed, differentiable: op.differentiable)
                let before = device.fallbacks.count
                let dev = try evaluate(apply, shapes, values, on: device, seed: seed, differentiable: op.differentiable)
                let after = device.fallbacks
                if after.count > before {
                    let reason = after.reasons[op.name] ?? after.reasons.values.first ?? ""
                    let firstLine = reason.split(separator: "\n").first.map(String.init) ?? reason
                    result.note = "ran on the host, not on \(device): \(firstLine)"
                }
                let f = Op.error(dev.value, host.value)
                result.forward = (f.abs, f.rel)
                if op.differentiable {
                    result.gradient = try worst(dev.gradients, host.gradients, "a gradient")
                    result.secondOrder = try worst(dev.second, host.second, "a second-order gradient")
                }
            } catch {
                result.note = "\(error)"
            }
            return result
        }
    }

    /// Forward value, gradients with a fixed random cotangent, and a Hessian-vector product.
    static func evaluate(
        _ f: ([Tensor]) throws -> Tensor, _ shapes: [[Int]], _ values: [[Double]], on device: Device,
        seed: UInt64, differentiable: Bool
    ) throws -> (value: [Double], gradients: [[Double]?], second: [[Double]?]) {
        let xs = zip(shapes, values).map { Tensor(shape: $0, scalars: $1, on: device) }
        let outer = GradientTape()
        let inner = GradientTape()
        outer.watch(xs)
        inner.watch(xs)
        var value = [Double]()
        var first = [[Double]?]()
        var hv: Tensor? = nil
        try outer.record {
            let y = try inner.record { try f(xs) }
            value = y.scalars(as: Double.self)
            guard differentiable else { return }
            var rng = SplitMix64(seed: seed)
            let dy = Tensor(
                shape: y.shape, scalars: (0..<y.count).map { _ in 0.5 + rng.nextUnit() }, dtype: y.dtype, on: y.device)
            let grads = try inner.gradient(of: y, wrt: xs, outputGradients: dy)
            first = grads.map { $0?.scalars(as: Double.self) }
            hv = zip(grads, xs).compactMap { g, x in
                g.map {
                    ($0 * Tensor(shape: x.shape, scalars: (0..<x.count).map { Double($0 % 7) / 7 }, on: device)).sum()
                }
            }
            .reduce(nil) { acc, t in acc.map { $0 + t } ?? t }
        }
        guard differentiable, let hv else { return (value, first, []) }
        return (value, first, try outer.gradient(of: hv, wrt: xs).map { $0?.scalars(as: Double.self) })
    }

    /// The worst error over several gradients; a gradient `nil` on one side only is a mismatch.
    static func worst(_ device: [[Double]?], _ host: [[Double]?], _ what: String) throws -> (abs: Double, rel: Double) {
        try zip(device, host).reduce((abs: 0.0, rel: 0.0)) { worst, pair in
            guard (pair.0 == nil) == (pair.1 == nil) else {
                throw TapeError.backend("\(what) is nil on one device only")
            }
            guard let d = pair.0, let h = pair.1 else { return worst }
            let e = Op.error(d, h)
            return (max(worst.abs, e.abs), max(worst.rel, e.rel))
        }
    }

}
