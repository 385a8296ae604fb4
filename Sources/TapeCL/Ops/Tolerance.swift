@_spi(Runtime) import TapeCLRuntime

/// How closely a device must match the host for an op, relative to max(1, |host value|): what
/// `tapecl check`, `TAPECL_CROSSCHECK` and the tests allow. Each op's table entry names its kind.
package enum Tolerance: Sendable {
    /// Arithmetic, comparisons and layout: the same IEEE operations in the same order on every
    /// device, so forward values agree exactly; gradients may differ by a few ulp where a
    /// cotangent is summed back over a broadcast.
    case exact
    /// Sums: the fixed order of `ReduceOrder` on every device, exact forward.
    case summed
    /// Functions of a device's math library (OpenCL 1.2 allows 4 ulp for sin, cos, exp, log).
    case library
    /// Matrix products: each device's own summation order.
    case matmul

    /// (forward, gradient) bounds for `dtype`.
    package func bounds(_ dtype: DType) -> (forward: Double, gradient: Double) {
        let ulp = dtype == .float32 ? 1.2e-7 : 2.3e-16
        switch self {
        case .exact: return (0, dtype == .float32 ? 8 * ulp : 16 * ulp)
        case .summed: return (0, 8 * ulp)
        case .library: return (16 * ulp, 64 * ulp)
        case .matmul: return (64 * ulp, 64 * ulp)
        }
    }
}

extension Op {
    /// Largest absolute difference, the largest relative to Swift.max(1, |b|), and where that is.
    package static func error(_ a: [Double], _ b: [Double]) -> (abs: Double, rel: Double, at: Int) {
        guard a.count == b.count else { return (.infinity, .infinity, 0) }
        var worst = (abs: 0.0, rel: 0.0, at: 0)
        for (i, (x, y)) in zip(a, b).enumerated() {
            let d = x == y || (x.isNaN && y.isNaN) ? 0 : Swift.abs(x - y)
            let rel = d / Swift.max(1, Swift.abs(y))
            worst.abs = Swift.max(worst.abs, d)
            if rel > worst.rel { (worst.rel, worst.at) = (rel, i) }
        }
        return worst
    }
}
