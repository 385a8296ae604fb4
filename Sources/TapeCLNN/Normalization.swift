import Synchronization
import TapeCL

/// Layer normalisation over the last axis (`tf.keras.layers.LayerNormalization`):
/// `(x − mean) / √(variance + ε) · gamma + beta`, with the biased variance.
///
/// ```swift
/// let norm = LayerNorm(featureCount: 32)
/// let y = norm(x)                  // [..., 32], each row to mean 0 and variance 1, then scaled
/// ```
public final class LayerNorm: Layer, Sendable {
    /// `[featureCount]`, starting at 1.
    public let gamma: Variable
    /// `[featureCount]`, starting at 0.
    public let beta: Variable
    public let epsilon: Double
    public let name: String?

    public init(featureCount: Int, epsilon: Double = 1e-3, on device: Device? = nil, name: String? = nil) {
        self.name = name
        gamma = Variable(Tensor.ones(shape: [featureCount], on: device), name: "gamma")
        beta = Variable(Tensor.zeros(shape: [featureCount], on: device), name: "beta")
        self.epsilon = epsilon
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let mean = x.mean(axes: [-1], keepDims: true)
        let centered = x - mean
        let variance = (centered * centered).mean(axes: [-1], keepDims: true)
        return centered / sqrt(variance + epsilon) * gamma + beta
    }

    public var variables: [Variable] { [gamma, beta] }
    public var namedVariables: [String: Variable] { ["gamma": gamma, "beta": beta] }
}

/// Inverted dropout: while training, each element is zeroed with probability `rate` and the rest
/// scaled by 1/(1 − rate); otherwise the identity (`tf.keras.layers.Dropout`). The masks come from
/// `seed` and a call counter, so a run is repeatable. The flag and the counter are under a lock:
/// calls from several threads each take a mask of their own.
public final class Dropout: Layer, Sendable {
    public let rate: Double
    public let seed: UInt64
    private let state = Mutex((isTraining: false, calls: UInt64(0)))

    /// Whether calls drop elements (``Sequential/setTraining(_:)`` sets it for a whole model).
    public var isTraining: Bool {
        get { state.withLock { $0.isTraining } }
        set { state.withLock { $0.isTraining = newValue } }
    }

    /// - Precondition: `rate` in `0 ..< 1` (else a stop naming it).
    public init(rate: Double, seed: UInt64 = 0) {
        let valid = (0..<1).contains(rate)
        if !valid { stop(TapeError.argument("Dropout: rate \(rate) must be in [0, 1)"), else: ()) }
        self.rate = valid ? rate : 0
        self.seed = seed
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let call: UInt64? = state.withLock { s in
            guard s.isTraining, rate > 0 else { return nil }
            s.calls += 1
            return s.calls
        }
        guard let call else { return x }
        let u = Tensor.randomUniform(shape: x.shape, seed: seed &+ call &* 0x9E37_79B9, dtype: x.dtype, on: x.device)
        return select(u .>= rate, x / (1 - rate), 0)
    }

    public func setTraining(_ training: Bool) { isTraining = training }
}

/// A lookup table of `embeddingSize` vectors for ids `0 ..< vocabularySize`
/// (`tf.keras.layers.Embedding`): int32 ids of any shape to `ids.shape + [embeddingSize]`, by
/// TapeCL's `gather(_:indices:axis:)`; repeated ids add up in the table's gradient.
///
/// ```swift
/// let embed = Embedding(vocabularySize: 10, embeddingSize: 16, seed: 1)
/// let vectors = embed(Tensor([[Int32(3), 1], [0, 9]]))      // [2, 2, 16]
/// ```
public final class Embedding: Layer, Sendable {
    /// `[vocabularySize, embeddingSize]`, uniform in [−0.05, 0.05) as Keras starts it.
    public let table: Variable
    public let name: String?

    public init(
        vocabularySize: Int, embeddingSize: Int, seed: UInt64 = 0, on device: Device? = nil, name: String? = nil
    ) {
        self.name = name
        table = Variable(
            Tensor.randomUniform(
                shape: [vocabularySize, embeddingSize], lowerBound: -0.05, upperBound: 0.05, seed: seed, on: device),
            name: "table")
    }

    /// The vectors of `ids` (int32).
    public func callAsFunction(_ ids: Tensor) -> Tensor { gather(table, indices: ids) }

    public var variables: [Variable] { [table] }
    public var namedVariables: [String: Variable] { ["table": table] }
}
