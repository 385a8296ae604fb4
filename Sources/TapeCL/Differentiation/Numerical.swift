@_spi(Runtime) import TapeCLRuntime

/// Central finite differences in float64: `∂f/∂xᵢ ≈ (Σf(x + εeᵢ) − Σf(x − εeᵢ)) / 2ε`.
///
/// The reference TapeCL's own tests check every gradient against (as seed 004 does by hand,
/// with central rather than forward differences: error O(ε²) instead of O(ε)). `f` receives
/// float64 tensors on the host; a non-scalar result is summed. Costs 2·count evaluations of `f`.
///
/// ```swift
/// let g = numericalGradient(of: { x in x * x * 4 }, at: Tensor(3.0))   // ≈ 24
/// ```
/// - Returns: a float64 tensor of `x`'s shape, on the host.
public func numericalGradient(of f: (Tensor) throws -> Tensor, at x: Tensor, epsilon: Double = 1e-6) rethrows -> Tensor
{
    try numericalGradient(of: { try f($0[0]) }, at: [x], epsilon: epsilon)[0]
}

/// Finite-difference gradients of `f` with respect to each of several inputs.
public func numericalGradient(
    of f: ([Tensor]) throws -> Tensor, at xs: [Tensor], epsilon: Double = 1e-6
) rethrows -> [Tensor] {
    try Recorder.unrecorded {
        try withDevice(.host) {
            let values = xs.map { $0.scalars(as: Double.self) }
            func evaluate(_ values: [[Double]]) throws -> Double {
                let inputs = zip(values, xs).map { Tensor(shape: $1.shape, scalars: $0, dtype: .float64, on: .host) }
                return try f(inputs).cast(to: .float64).sum().scalars(as: Double.self)[0]
            }
            return try xs.indices.map { k in
                var grad = [Double](repeating: 0, count: values[k].count)
                var probe = values
                for i in grad.indices {
                    probe[k][i] = values[k][i] + epsilon
                    let up = try evaluate(probe)
                    probe[k][i] = values[k][i] - epsilon
                    let down = try evaluate(probe)
                    probe[k][i] = values[k][i]
                    grad[i] = (up - down) / (2 * epsilon)
                }
                return Tensor(shape: xs[k].shape, scalars: grad, dtype: .float64, on: .host)
            }
        }
    }
}
