import TapeCL

/// A fully connected layer: `y = activation(x · weight + bias)`.
///
/// Weights start as normal(0, 1)/√inputSize (from `seed`), biases at zero.
///
/// ```swift
/// let layer = Dense(inputSize: 64, outputSize: 10, seed: 1)
/// let logits = layer(images)          // [batch, 64] -> [batch, 10]
/// ```
public final class Dense: Sendable {
    /// `[inputSize, outputSize]`.
    public let weight: Variable
    /// `[outputSize]`.
    public let bias: Variable
    public let activation: @Sendable (Tensor) -> Tensor

    /// A layer mapping `[batch, inputSize]` to `[batch, outputSize]`; `seed` fixes the initial weights.
    public init(
        inputSize: Int, outputSize: Int, activation: @escaping @Sendable (Tensor) -> Tensor = { $0 },
        seed: UInt64 = 0, on device: Device? = nil
    ) {
        let scale = 1 / Double(inputSize).squareRoot()
        weight = Variable(
            Tensor.randomNormal(shape: [inputSize, outputSize], stddev: scale, seed: seed, on: device), name: "weight")
        bias = Variable(Tensor.zeros(shape: [outputSize], on: device), name: "bias")
        self.activation = activation
    }

    /// `activation(x · weight + bias)`.
    public func callAsFunction(_ x: Tensor) -> Tensor { activation(matmul(x, weight) + bias) }

    /// The trainable variables: `[weight, bias]`.
    public var variables: [Variable] { [weight, bias] }
}

/// Mean over the batch of `−Σ labels · log softmax(logits)`; `labels` are one-hot (or
/// probabilities) of the logits' shape `[batch, classes]`.
public func softmaxCrossEntropy(logits: Tensor, labels: Tensor) -> Tensor {
    -(labels * logSoftmax(logits)).sum(axes: [-1]).mean()
}

/// `mean((prediction − target)²)`, the square taken as `d · d` (as `tf.square` does; `pow` would
/// call libm's pow per element and again in the backward pass).
public func meanSquaredError(_ prediction: Tensor, _ target: Tensor) -> Tensor {
    let d = prediction - target
    return (d * d).mean()
}

/// One-hot rows: `[labels.count, classes]` with a 1 at each label.
public func oneHot(_ labels: [Int], classes: Int, on device: Device? = nil) -> Tensor {
    var values = [Float](repeating: 0, count: labels.count * classes)
    for (i, l) in labels.enumerated() where (0..<classes).contains(l) { values[i * classes + l] = 1 }
    return Tensor(shape: [labels.count, classes], scalars: values, on: device)
}
