@_spi(Runtime) import TapeCLRuntime

/// How closely a device must match the host: `tapecl check`, `TAPECL_CROSSCHECK` and the tests.
extension Op {
    /// How closely a device must match the host (relative to max(1, |host|)), per op and dtype.
    /// Arithmetic is exact: the same IEEE operations in the same order, including every sum
    /// (see `ReduceOrder`). Transcendental functions may differ by the device library's ulp
    /// bounds (OpenCL 1.2 allows 4 ulp for sin, cos, exp, log); matmul by its summation order.
    package static func tolerance(_ op: String, _ dtype: DType) -> (forward: Double, gradient: Double) {
        let ulp = dtype == .float32 ? 1.2e-7 : 2.3e-16
        switch op {
        case "neg", "add", "sub", "mul", "div", "reshape", "transpose", "broadcast", "cast", "to", "relu", "abs",
            "maximum", "minimum", "max", "sum", "step", "sign", "equal", "greater_equal", "stop_gradient", "concat",
            "slice":
            return (0, 16 * ulp)
        case "matmul": return (64 * ulp, 64 * ulp)
        default: return (16 * ulp, 64 * ulp)
        }
    }

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
