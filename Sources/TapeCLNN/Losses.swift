import TapeCL

/// Mean over the batch of `−Σ labels · log softmax(logits)`; `labels` are one-hot (or
/// probabilities) of the logits' shape `[batch, classes]`.
///
/// - Precondition: `labels` of the logits' shape and dtype (int32 class ids are
///   ``sparseSoftmaxCrossEntropy(logits:labels:)``'s); else the program stops naming both.
public func softmaxCrossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    if let inert = Tensor.inertResult(of: "softmaxCrossEntropy", logits, labels) { return inert }
    if labels.dtype == .int32 && labels.rank == logits.rank - 1 {
        let message =
            "softmaxCrossEntropy: labels \(labels.shape) int32 are class ids: use "
            + "sparseSoftmaxCrossEntropy(logits:labels:), or one-hot labels of shape \(logits.shape)"
        return stop(TapeError.dtype(message), else: .inert(dtype: logits.dtype))
    }
    if labels.shape != logits.shape || labels.dtype != logits.dtype {
        let message =
            "softmaxCrossEntropy: labels must be one-hot (or probabilities) of the logits' shape and dtype, "
            + "\(logits.shape) \(logits.dtype), not \(labels.shape) \(labels.dtype)"
        return stop(TapeError.shape(message), else: .inert(dtype: logits.dtype))
    }
    return -(labels * logSoftmax(logits)).sum(axes: [-1]).mean()
}

/// Mean over the examples of `−log softmax(logits)[label]` for int32 class ids
/// (`tf.nn.sparse_softmax_cross_entropy_with_logits`, averaged): `logits` `[..., classes]`,
/// `labels` int32 of the leading shape. The gradient is `softmax − onehot` per example, divided by
/// their number.
///
/// ```swift
/// let loss = sparseSoftmaxCrossEntropy(logits: model(x), labels: Tensor([Int32(3), 1, 0]))
/// ```
/// - Precondition: `logits` of rank 1 or more; `labels` int32 of shape `logits.shape.dropLast()`
///   (TensorFlow: "logits and labels must have the same first dimension"); every label in
///   `0 ..< classes`. Else the program stops with a `TapeError` naming the shapes, the dtype or the label.
public func sparseSoftmaxCrossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    if let inert = Tensor.inertResult(of: "sparseSoftmaxCrossEntropy", logits, labels) { return inert }
    guard logits.rank >= 1 else {
        let message = "sparseSoftmaxCrossEntropy: logits must have a classes axis, not shape \(logits.shape)"
        return stop(TapeError.shape(message), else: .inert(dtype: logits.dtype))
    }
    guard labels.dtype == .int32 else {
        let oneHot =
            labels.shape == logits.shape && labels.dtype.isFloatingPoint
            ? "; labels of the logits' shape look one-hot: use softmaxCrossEntropy(logits:labels:)" : ""
        let message = "sparseSoftmaxCrossEntropy: labels must be int32 class ids, not \(labels.dtype)\(oneHot)"
        return stop(TapeError.dtype(message), else: .inert(dtype: logits.dtype))
    }
    guard labels.shape == Array(logits.shape.dropLast()) else {
        let message =
            "sparseSoftmaxCrossEntropy: logits and labels must have the same leading shape: logits \(logits.shape) "
            + "need labels \(Array(logits.shape.dropLast())), not \(labels.shape)"
        return stop(TapeError.shape(message), else: .inert(dtype: logits.dtype))
    }
    let classes = logits.shape[logits.rank - 1]
    if let error = labelError(labels, classes) { return stop(error, else: .inert(dtype: logits.dtype)) }
    // Each row's log-probability at its label, picked by comparing the labels with 0 ..< classes on
    // the device (a gather would read its indices back to check them, a wait on every step).
    let rows = logSoftmax(logits.reshaped(to: [-1, classes]))
    let ids = labels.reshaped(to: [-1, 1])
    let classIds = Tensor(shape: [1, classes], scalars: (0..<classes).map(Int32.init), on: logits.device)
    return -select(ids .== classIds, rows, Tensor(0, dtype: logits.dtype, on: logits.device)).sum(axes: [-1]).mean()
}

/// The error unless every label lies in `0 ..< classes`: checked against the range known when the
/// labels were made from host values (no read of the device), else read back once.
func labelError(_ labels: Tensor, _ classes: Int) -> TapeError? {
    if let known = labels.knownRange, known.lowerBound >= 0, known.upperBound < classes { return nil }
    let values = labels.scalars(as: Int32.self)
    guard let (i, bad) = values.enumerated().first(where: { !(0..<Int32(classes)).contains($1) }) else { return nil }
    return TapeError.argument("sparseSoftmaxCrossEntropy: label \(bad) (example \(i)) is out of range 0..<\(classes)")
}

/// `mean((predicted − expected)²)` (`tf.keras.losses.MeanSquaredError()(expected, predicted)`), the
/// square taken as `d · d` (as `tf.square` does; `pow` would call libm's pow per element and again in
/// the backward pass). The two broadcast together, as Keras's do.
///
/// ```swift
/// let loss = meanSquaredError(predicted: model(x), expected: y)
/// ```
public func meanSquaredError(predicted: Tensor, expected: Tensor) -> Tensor {
    let d = predicted - expected
    return (d * d).mean()
}
