@_spi(Runtime) import TapeCLRuntime

extension GradientTape {
    /// The full Jacobian `∂target/∂source`, of shape `target.shape + source.shape`.
    ///
    /// Element `[i…, j…]` is `∂target[i…]/∂source[j…]`. It takes one backward pass per target
    /// element (each with a one-hot output gradient), so a non-persistent tape can only serve a
    /// one-element target; otherwise it throws rather than answer from a tape it has freed
    /// (TensorFlow's `batch_jacobian` silently differed there, tensorflow#47785).
    /// The result is assembled on the host and is not itself recorded: for higher orders nest
    /// tapes around `gradient`.
    ///
    /// ```swift
    /// let tape = GradientTape(persistent: true)
    /// tape.watch(x)                                   // x: [3]
    /// let y = tape.record { x * x }
    /// let j = try tape.jacobian(of: y, wrt: x)       // [3, 3], diag(2x)
    /// ```
    /// - Returns: `nil` when the target does not depend on the source.
    public func jacobian(
        of target: Tensor, wrt source: some TensorConvertible,
        unconnected: UnconnectedGradients = .none
    ) throws -> Tensor? {
        let s = Self.tensor(source)
        let rows = try oneHotGradients(of: target, wrt: source, count: target.count, what: "jacobian") { i in
            var seed = [Double](repeating: 0, count: target.count)
            seed[i] = 1
            return seed
        }
        guard let rows else {
            return unconnected == .zero
                ? Tensor.zeros(shape: target.shape + s.shape, dtype: s.dtype, on: s.device) : nil
        }
        return Tensor(shape: target.shape + s.shape, scalars: rows.flatMap { $0 }, dtype: s.dtype, on: s.device)
    }

    /// Per-example Jacobians: for `target` `[B, N…]` and `source` `[B, M…]` whose rows are
    /// independent, the `[B, N…, M…]` tensor of `∂target[b, n…]/∂source[b, m…]`.
    ///
    /// One backward pass per target row element (N), not per element (B·N): row `n` gets
    /// the gradient of `target[:, n]` for every example at once. Throws unless both have rank
    /// ≥ 2 and the same first dimension, and (for N > 1) unless the tape is persistent.
    public func batchJacobian(
        of target: Tensor, wrt source: some TensorConvertible,
        unconnected: UnconnectedGradients = .none
    ) throws -> Tensor? {
        let s = Self.tensor(source)
        guard target.rank >= 2, s.rank >= 2, target.shape[0] == s.shape[0] else {
            throw TapeError.shape(
                "batchJacobian: target \(Shape.describe(target.shape)) and source "
                    + "\(Shape.describe(s.shape)) need rank ≥ 2 and the same first (batch) dimension"
            )
        }
        let batch = target.shape[0]
        let n = target.count / max(batch, 1)
        let m = s.count / max(batch, 1)
        let rows = try oneHotGradients(of: target, wrt: source, count: n, what: "batchJacobian") { j in
            var seed = [Double](repeating: 0, count: target.count)
            for b in 0..<batch { seed[b * n + j] = 1 }
            return seed
        }
        let shape = [batch] + target.shape.dropFirst() + s.shape.dropFirst()
        guard let rows else {
            return unconnected == .zero ? Tensor.zeros(shape: shape, dtype: s.dtype, on: s.device) : nil
        }
        var out = [Double](repeating: 0, count: batch * n * m)
        for j in 0..<n { for b in 0..<batch { for k in 0..<m { out[(b * n + j) * m + k] = rows[j][b * m + k] } } }
        return Tensor(shape: shape, scalars: out, dtype: s.dtype, on: s.device)
    }

    /// One gradient per seed; `nil` when every one is unconnected.
    private func oneHotGradients(
        of target: Tensor, wrt source: some TensorConvertible, count: Int, what: String,
        seed: (Int) -> [Double]
    ) throws -> [[Double]]? {
        if !persistent && count > 1 {
            throw TapeError.tape(
                "GradientTape.\(what): a target of \(count) elements needs one backward pass each; a "
                    + "non-persistent tape frees its entries after the first, so create it with "
                    + "GradientTape(persistent: true)"
            )
        }
        let s = Self.tensor(source)
        var rows: [[Double]] = []
        var connected = false
        for i in 0..<count {
            let dy = Tensor(shape: target.shape, scalars: seed(i), dtype: target.dtype, on: target.device)
            if let g = try gradient(of: target, wrt: [source], outputGradients: dy)[0] {
                connected = true
                rows.append(g.scalars(as: Double.self))
            } else {
                rows.append([Double](repeating: 0, count: s.count))
            }
        }
        return connected ? rows : nil
    }
}
