import Foundation
@_spi(Runtime) import TapeCLRuntime

// Elementwise ops: one line each, kernel name = op name (see Kernels/elementwise.cl).
// Host loops: `each { f }`, compiled for float64 and float32 values, or HostMath's (sin, cos, exp).
// sin and cos fuse on small results only: over a large tensor, OpenCL redoes their large arguments in a second
// pass (elementwise.cl), which a fused kernel's one step would do per element, unvectorised.
// Rules: `dy` is the output's cotangent, `s` the saved values (`s.x` input, `s.y` output).

/// The loops applying `f` to each element. `f` is a closure literal at each op's table line and
/// this function is inlined there, so the optimiser compiles `f` into both loops (no call per
/// element; `Float(Double(a) * Double(b))` becomes a float32 multiply).
@inline(__always)
func each(_ f: @escaping @Sendable (Double) -> Double) -> UnaryLoop {
    UnaryLoop(
        double: { x, o, n in for i in 0..<n { o[i] = f(x[i]) } },
        float: { x, o, n in for i in 0..<n { o[i] = Float(f(Double(x[i]))) } })
}
@inline(__always)
func each(_ f: @escaping @Sendable (Double, Double) -> Double) -> BinaryLoop {
    BinaryLoop(
        double: { a, b, o, n in for i in 0..<n { o[i] = f(a[i], b[i]) } },
        float: { a, b, o, n in for i in 0..<n { o[i] = Float(f(Double(a[i]), Double(b[i]))) } })
}

extension Op {
    /// An elementwise unary op. Its Jacobian is diagonal, so the forward rule J·dx is the same
    /// product as the reverse rule Jᵀ·dy: one derivative serves both.
    static func unary(
        _ name: String, saves: Saves, floatOnly: Bool = true, fusable: Fusing = .always,
        domain: ClosedRange<Double> = -2...2, tolerance: Tolerance = .library,
        _ host: UnaryLoop, derivative: @escaping @Sendable (Saved, Tensor) -> Tensor
    ) -> Op {
        Op(
            name: name, arity: 1, forward: .unary(kernel: name, host: host), shape: sameShape, saves: saves,
            floatOnly: floatOnly,
            fusable: fusable, sampleDomain: domain, tolerance: tolerance,
            vjp: { s, dy in s.grad(derivative(s, dy)) },
            jvp: { s, dx in dx[0].map { derivative(s, $0) } })
    }

    /// The partial derivatives of a binary elementwise op at its saved values, as products with a
    /// cotangent or tangent `t`: `(a: ∂f/∂a · t, b: ∂f/∂b · t)`. The Jacobians are diagonal, so the
    /// same product serves the reverse rule (Jᵀ·dy) and the forward rule (J·dx): each partial is
    /// stated once. Called once per backward or forward step, so a shared factor is computed once.
    typealias Partials = @Sendable (Saved) -> (a: (Tensor) -> Tensor, b: (Tensor) -> Tensor)

    /// An elementwise binary op with NumPy broadcasting.
    static func binary(
        _ name: String, saves: Saves, floatOnly: Bool = false, domain: ClosedRange<Double> = -2...2,
        tolerance: Tolerance = .exact, _ host: BinaryLoop, partials: @escaping Partials
    ) -> Op {
        Op(
            name: name, arity: 2, forward: .binary(kernel: name, host: host), shape: broadcastShape(name),
            saves: saves, floatOnly: floatOnly, sampleDomain: domain, tolerance: tolerance,
            vjp: { s, dy in
                let p = partials(s)
                return s.grads(p.a(dy), p.b(dy))
            },
            jvp: { s, d in
                let p = partials(s)
                return plus(d[0].map(p.a), d[1].map(p.b))
            })
    }

    static let neg = unary("neg", saves: .nothing, floatOnly: false, tolerance: .exact, each { -$0 }) { _, dy in -dy }
    static let sin = unary("sin", saves: .inputs, fusable: .smallResults, HostMath.sin) { s, dy in
        dy * TapeCL.cos(s.x)  // d sin = cos
    }
    static let cos = unary("cos", saves: .inputs, fusable: .smallResults, HostMath.cos) { s, dy in
        -dy * TapeCL.sin(s.x)  // d cos = -sin
    }
    static let tan = unary("tan", saves: .output, domain: -1.2...1.2, each { Foundation.tan($0) }) { s, dy in
        dy * (1 + s.y * s.y)  // d tan = 1 + tan²
    }
    static let exp = unary("exp", saves: .output, HostMath.exp) { s, dy in dy * s.y }  // d exp = exp
    static let log = unary("log", saves: .inputs, domain: 0.25...3, each { Foundation.log($0) }) { s, dy in
        dy / s.x  // d log = 1/x
    }
    static let sqrt = unary("sqrt", saves: .output, domain: 0.25...3, each { $0.squareRoot() }) { s, dy in
        dy / (2 * s.y)  // d √x = 1/(2√x)
    }
    static let tanh = unary("tanh", saves: .output, each { Foundation.tanh($0) }) { s, dy in
        dy * (1 - s.y * s.y)  // d tanh = 1 - tanh²
    }
    static let sigmoid = unary("sigmoid", saves: .output, domain: -4...4, each { 1 / (1 + Foundation.exp(-$0)) }) {
        s, dy in
        dy * s.y * (1 - s.y)  // σ(1-σ)
    }
    static let relu = unary("relu", saves: .output, floatOnly: false, tolerance: .exact, each { $0 > 0 ? $0 : 0 }) {
        s, dy in
        dy * Op.step(s.y)  // 1 where x > 0
    }
    static let abs = unary("abs", saves: .inputs, floatOnly: false, tolerance: .exact, each { $0 < 0 ? -$0 : $0 }) {
        s, dy in
        dy * Op.sign(s.x)  // sign(x)
    }
    /// log(x) for x > 0, else 0: the exponent's gradient of `pow` (TensorFlow masks log the same way).
    static let safeLog = unary("safeLog", saves: .inputs, each { $0 > 0 ? Foundation.log($0) : 0 }) { s, dy in
        dy * Op.step(s.x) / (TapeCL.abs(s.x) + (1 - Op.step(s.x)))  // 1/x where x > 0
    }

    static let add = binary("add", saves: .nothing, each { $0 + $1 }) { _ in ({ $0 }, { $0 }) }
    static let sub = binary("sub", saves: .nothing, each { $0 - $1 }) { _ in ({ $0 }, { -$0 }) }
    // d(ab) = b da + a db
    static let mul = binary("mul", saves: .crossed, each { $0 * $1 }) { s in ({ $0 * s.b }, { $0 * s.a }) }
    // d(a/b) = da/b - a db/b²
    static let div = binary("div", saves: .inputs, domain: 0.5...2, each { $0 / $1 }) { s in
        ({ $0 / s.b }, { $0 * (-s.a / s.b / s.b) })
    }
    // d(aᵇ) = b·aᵇ⁻¹ da + aᵇ·log a db
    static let pow = binary(
        "pow", saves: .inputsAndOutput, floatOnly: true, domain: 0.3...2, tolerance: .library,
        each { Foundation.pow($0, $1) }
    ) { s in
        ({ $0 * s.b * TapeCL.pow(s.a, s.b - 1) }, { $0 * s.y * Op.safeLog(s.a) })
    }
    // ties go to a; the cotangent is selected, as TensorFlow's _MaximumGrad and _MinimumGrad select it
    static let maximum = binary("maximum", saves: .inputs, each { $0 >= $1 ? $0 : $1 }) { s in
        let m = s.a .>= s.b
        return ({ TapeCL.select(m, $0, 0) }, { TapeCL.select(m, 0, $0) })
    }
    static let minimum = binary("minimum", saves: .inputs, each { $0 <= $1 ? $0 : $1 }) { s in
        let m = s.b .>= s.a
        return ({ TapeCL.select(m, $0, 0) }, { TapeCL.select(m, 0, $0) })
    }

    // relu's and abs's masks: a zero derivative, as TensorFlow registers for ReluGrad's input and Sign, so second
    // derivatives through relu and abs are zeros, as there (through maximum, minimum and max: nil, TensorFlow's None).
    static let step = unary("step", saves: .nothing, floatOnly: false, tolerance: .exact, each { $0 > 0 ? 1 : 0 }) {
        _, dy in
        .zeros(like: dy)
    }
    static let sign = unary(
        "sign", saves: .nothing, floatOnly: false, tolerance: .exact, each { $0 > 0 ? 1 : $0 < 0 ? -1 : 0 }
    ) { _, dy in
        .zeros(like: dy)
    }
}

/// The sum of the tangents that exist (`nil` is a zero tangent).
func plus(_ a: Tensor?, _ b: Tensor?) -> Tensor? {
    switch (a, b) {
    case let (a?, b?): a + b
    case let (a?, nil): a
    case let (nil, b): b
    }
}
