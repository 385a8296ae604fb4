@_spi(Runtime) import TapeCLRuntime

// Normalising functions, composed of table ops (so their gradients, second orders and kernels
// are those ops'): logSumExp, softmax, logSoftmax, clipByValue.

extension Tensor {
    /// `log Σ exp(x)` over `axes`, computed stably as `m + log Σ exp(x − m)` with `m` the maximum
    /// (a constant to the gradient, which it does not change; 0 where the maximum is ±∞ or NaN, as
    /// TensorFlow). The gradient is `softmax(x)` along the axes.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let top = stopGradient(max(axes: axes, keepDims: true))
        let m = select(abs(top) .< Double.infinity, top, 0)
        let result = m + log(exp(self - m).sum(axes: axes, keepDims: true))
        return keepDims ? result : result.reshaped(to: max(axes: axes, keepDims: false).shape)
    }
}

/// `exp(x) / Σ exp(x)` along `axis` (`tf.nn.softmax`), with the maximum subtracted first.
///
/// ```swift
/// softmax(Tensor([1, 2, 3]))     // [0.09003057, 0.24472848, 0.66524094]
/// ```
public func softmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    let e = exp(x - stopGradient(x.max(axes: [axis], keepDims: true)))
    return e / e.sum(axes: [axis], keepDims: true)
}

/// `log(softmax(x))` along `axis` (`tf.nn.log_softmax`), computed stably as
/// `z − log Σ exp(z)` with `z = x − max(x)` (the shift is a constant to the gradient, which it does
/// not change).
public func logSoftmax(_ x: Tensor, axis: Int = -1) -> Tensor {
    let shifted = x - stopGradient(x.max(axes: [axis], keepDims: true))
    return shifted - log(exp(shifted).sum(axes: [axis], keepDims: true))
}

/// `x` clipped to `[lower, upper]` (`tf.clip_by_value`): the gradient is 1 inside the interval,
/// its ends included, and 0 outside.
public func clipByValue(_ x: Tensor, _ lower: some TensorConvertible, _ upper: some TensorConvertible) -> Tensor {
    minimum(maximum(x, lower), upper)  // at ties both pass the gradient to their first argument, x
}
