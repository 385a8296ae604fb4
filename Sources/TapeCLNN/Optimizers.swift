import Foundation
import TapeCL

/// Updates variables from their gradients. Updates are not recorded on any tape.
public protocol Optimizer: AnyObject {
    /// Applies one step; a `nil` gradient leaves its variable as it is. TapeCL's optimizers take a
    /// step all or nothing: the variables and gradients are checked first (one gradient or `nil` per
    /// variable, each of its variable's shape, dtype and device), every new value is computed, and
    /// only then are they assigned, so inside `withErrors` a failed step changes no variable and no
    /// state.
    func update(_ variables: [Variable], gradients: [Tensor?])
    /// The state kept across steps for the variables of `names` (each variable's by its name and a
    /// suffix, the optimizer's own without one): what ``Optimizer/saveState(of:to:)`` writes.
    func state(_ names: [String: Variable]) -> [String: Tensor]
    /// Replaces the state kept for the variables of `names` with `state`, as `state(_:)` gave it.
    /// - Throws: `TapeError.shape` naming every missing, unexpected or mis-shaped entry; nothing
    ///   is changed then.
    func setState(_ state: [String: Tensor], _ names: [String: Variable]) throws
}

/// Stochastic gradient descent, with optional momentum: `v = μv + g; w −= lr·v`.
public final class SGD: Optimizer {
    public var learningRate: Double
    public let momentum: Double
    var velocity: [ObjectIdentifier: Tensor] = [:]

    /// - Parameters:
    ///   - learningRate: the step size `lr`.
    ///   - momentum: `μ` (0: plain gradient descent).
    public init(learningRate: Double = 0.01, momentum: Double = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    public func update(_ variables: [Variable], gradients: [Tensor?]) {
        var velocity = velocity
        let taken = takeStep("SGD", variables, gradients) { v, g in
            var step = g
            if momentum != 0 {
                step = velocity[ObjectIdentifier(v)].map { momentum * $0 + g } ?? g
                step.evaluate()  // kept across steps
                velocity[ObjectIdentifier(v)] = step
            }
            return v.stored - learningRate * step
        }
        if taken { self.velocity = velocity }
    }
}

/// Adam (Kingma & Ba, 2015): `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`, then, as PyTorch places ε,
/// `w −= lr · m̂ / (√v̂ + ε)` with bias-corrected `m̂ = m/(1−β₁ᵗ)`,
/// `v̂ = v/(1−β₂ᵗ)`; or, as Keras places it (``EpsilonForm/keras``),
/// `w −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + ε)`. The two differ while `√v̂` is near ε.
///
/// ```swift
/// let adam = Adam(learningRate: 0.001)                                    // torch.optim.Adam(eps=1e-7)
/// let keras = Adam(learningRate: 0.001, epsilonForm: .keras)              // tf.keras.optimizers.Adam()
/// ```
public class Adam: Optimizer {
    /// Where ε goes.
    public enum EpsilonForm: Sendable {
        /// Added to the bias-corrected `√v̂` (PyTorch's `torch.optim.Adam`).
        case pyTorch
        /// Added to the uncorrected `√v`, the correction carried by the step size (Keras's `Adam`).
        case keras
    }

    public var learningRate: Double
    public let beta1: Double, beta2: Double, epsilon: Double
    public let epsilonForm: EpsilonForm
    /// Decoupled weight decay (``AdamW``): `w −= lr · λ · w` before the step; 0 for Adam.
    let weightDecay: Double
    var moments: [ObjectIdentifier: (m: Tensor, v: Tensor)] = [:]
    var step = 0

    /// ε 1e-7 as Keras's default (PyTorch's is 1e-8), in PyTorch's place unless `epsilonForm` says.
    public convenience init(
        learningRate: Double = 0.001, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-7,
        epsilonForm: EpsilonForm = .pyTorch
    ) {
        self.init(learningRate, beta1, beta2, epsilon, epsilonForm, weightDecay: 0)
    }

    init(
        _ learningRate: Double, _ beta1: Double, _ beta2: Double, _ epsilon: Double, _ form: EpsilonForm,
        weightDecay: Double
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.epsilonForm = form
        self.weightDecay = weightDecay
    }

    public func update(_ variables: [Variable], gradients: [Tensor?]) {
        let step = self.step + 1
        let c1: Double = 1 - Foundation.pow(beta1, Double(step))
        let c2: Double = 1 - Foundation.pow(beta2, Double(step))
        var moments = moments
        let taken = takeStep(String(describing: Self.self), variables, gradients) { v, g in
            let key = ObjectIdentifier(v)
            let (m0, v0) = moments[key] ?? (g * 0, g * 0)
            let m = beta1 * m0 + (1 - beta1) * g
            let s = beta2 * v0 + (1 - beta2) * g * g
            m.evaluate()  // kept across steps: computed once, not inside every later step's chain
            s.evaluate()
            moments[key] = (m, s)
            var w = v.stored
            if weightDecay != 0 {
                w = w * (1 - learningRate * weightDecay)
                w.evaluate()
            }
            return switch epsilonForm {
            case .pyTorch: w - learningRate * (m / c1) / (sqrt(s / c2) + epsilon)
            case .keras: w - (learningRate * c2.squareRoot() / c1) * m / (sqrt(s) + epsilon)
            }
        }
        if taken { (self.moments, self.step) = (moments, step) }
    }
}

/// Adam with decoupled weight decay (Loshchilov & Hutter, 2019; `torch.optim.AdamW`): each step
/// first shrinks every weight, `w −= lr · λ · w`, then takes Adam's step from the gradient alone.
///
/// ```swift
/// let optimizer = AdamW(learningRate: 0.001, weightDecay: 0.01)   // PyTorch's defaults, ε 1e-8
/// ```
public final class AdamW: Adam {
    /// PyTorch's defaults: `weightDecay` 0.01, ε 1e-8 in PyTorch's place.
    public init(
        learningRate: Double = 0.001, weightDecay: Double = 0.01, beta1: Double = 0.9, beta2: Double = 0.999,
        epsilon: Double = 1e-8, epsilonForm: EpsilonForm = .pyTorch
    ) {
        super.init(learningRate, beta1, beta2, epsilon, epsilonForm, weightDecay: weightDecay)
    }
}

/// RMSprop as PyTorch computes it (`torch.optim.RMSprop`): `s = αs + (1−α)g²`; centred, `ḡ = αḡ +
/// (1−α)g` and `s − ḡ²` in place of `s`; then `w −= lr · g / (√s + ε)`, or with momentum
/// `b = μb + g / (√s + ε)`, `w −= lr · b`.
///
/// ```swift
/// let optimizer = RMSprop(learningRate: 0.01)   // PyTorch's defaults: α 0.99, ε 1e-8
/// ```
public final class RMSprop: Optimizer {
    public var learningRate: Double
    public let alpha: Double, epsilon: Double, momentum: Double
    public let centered: Bool
    var squares: [ObjectIdentifier: Tensor] = [:]
    var means: [ObjectIdentifier: Tensor] = [:]
    var buffers: [ObjectIdentifier: Tensor] = [:]

    public init(
        learningRate: Double = 0.01, alpha: Double = 0.99, epsilon: Double = 1e-8, momentum: Double = 0,
        centered: Bool = false
    ) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.epsilon = epsilon
        self.momentum = momentum
        self.centered = centered
    }

    public func update(_ variables: [Variable], gradients: [Tensor?]) {
        var (squares, means, buffers) = (squares, means, buffers)
        let taken = takeStep("RMSprop", variables, gradients) { v, g in
            let key = ObjectIdentifier(v)
            let s = alpha * (squares[key] ?? g * 0) + (1 - alpha) * g * g
            s.evaluate()
            squares[key] = s
            var spread = s
            if centered {
                let mean = alpha * (means[key] ?? g * 0) + (1 - alpha) * g
                mean.evaluate()
                means[key] = mean
                spread = s - mean * mean
            }
            let scaled = g / (sqrt(spread) + epsilon)
            guard momentum != 0 else { return v.stored - learningRate * scaled }
            let b = momentum * (buffers[key] ?? g * 0) + scaled
            b.evaluate()
            buffers[key] = b
            return v.stored - learningRate * b
        }
        if taken { (self.squares, self.means, self.buffers) = (squares, means, buffers) }
    }
}
