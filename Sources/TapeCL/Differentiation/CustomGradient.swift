@_spi(Runtime) import TapeCLRuntime

/// Wraps `f` so that its gradient is the one you give instead of the one its ops would give.
///
/// `f` returns its value and a backward function from the output's cotangent `dy` to the input's.
/// The forward runs unrecorded; the call is recorded as one op whose backward is yours. Use it
/// to clip, stabilise or replace a gradient (TensorFlow's `tf.custom_gradient`).
///
/// ```swift
/// let clipGradient = customGradient { (x: Tensor) in (x, { dy in clipByNorm(dy, 0.5) }) }
/// let v = Variable(2.0)
/// let tape = GradientTape()
/// let out = tape.record { clipGradient(v * v) }
/// try tape.gradient(of: out, wrt: v)     // 2.0: dy = 1 clipped to 0.5, times d(v²)/dv = 4
/// ```
/// Forward mode does not see through a custom gradient: its output has no tangent.
public func customGradient(
    _ f: @escaping (Tensor) -> (value: Tensor, gradient: (Tensor) -> Tensor)
) -> (Tensor) -> Tensor {
    let many = customGradient { (xs: [Tensor]) -> (value: Tensor, gradient: (Tensor) -> [Tensor?]) in
        let (value, backward) = f(xs[0])
        return (value, { dy in [backward(dy)] })
    }
    return { x in many([x]) }
}

/// The form of `customGradient(_:)`
/// for several inputs: the backward returns one
/// cotangent per input (`nil` for none).
public func customGradient(
    _ f: @escaping ([Tensor]) -> (value: Tensor, gradient: (Tensor) -> [Tensor?])
) -> ([Tensor]) -> Tensor {
    { xs in
        let (value, backward) = Recorder.unrecorded { f(xs) }
        let box = UncheckedBox(backward)
        let op = Op(
            name: "customGradient", arity: xs.count, forward: .alias, shape: { _, _ in value.shape }, saves: .nothing,
            vjp: { s, dy in
                let g = box.value(dy)
                guard g.count == s.shapes.count else {
                    let error = TapeError.argument(
                        "customGradient: the backward returned \(g.count) cotangents for \(s.shapes.count) inputs")
                    let inert = (0..<s.shapes.count).map { Tensor.inert(shape: s.shapes[$0], dtype: dy.dtype) }
                    return stop(error, else: Cotangents(inert))
                }
                return Cotangents(g)
            },
            jvp: { _, _ in nil })
        if value.isInert || ErrorScope.isFailing { return value }  // inside `withErrors` after an error
        let output = Tensor(handle: Storage(buffer: value.buffer, shape: value.shape, dtype: value.dtype))
        if value.dtype.isFloatingPoint { Inputs.with(xs) { Recorder.record(op, $0, output, .none) } }
        return output
    }
}

/// `t` scaled down so its L2 norm is at most `maxNorm`: `t · maxNorm / max(‖t‖₂, maxNorm)`.
public func clipByNorm(_ t: some TensorConvertible, _ maxNorm: some TensorConvertible) -> Tensor {
    let x = t.tensor(like: nil)
    let limit = maxNorm.tensor(like: x)
    return x * limit / maximum(sqrt((x * x).sum()), limit)
}
