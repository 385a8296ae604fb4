import Foundation
import TapeCL

/// Updates variables from their gradients. Updates are not recorded on any tape.
public protocol Optimizer: AnyObject {
    /// Applies one step; a `nil` gradient leaves its variable as it is.
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
        withoutRecording {
            for (v, g) in zip(variables, gradients) {
                guard let g else { continue }
                var step = g
                if momentum != 0 {
                    step = velocity[ObjectIdentifier(v)].map { momentum * $0 + g } ?? g
                    step.evaluate()  // kept across steps
                    velocity[ObjectIdentifier(v)] = step
                }
                v.assignSub(learningRate * step)
            }
        }
    }
}

/// Adam (Kingma & Ba, 2015): `m = β₁m + (1−β₁)g`, `v = β₂v + (1−β₂)g²`,
/// `w −= lr · m̂ / (√v̂ + ε)` with bias-corrected `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
public final class Adam: Optimizer {
    public var learningRate: Double
    public let beta1: Double, beta2: Double, epsilon: Double
    var moments: [ObjectIdentifier: (m: Tensor, v: Tensor)] = [:]
    var step = 0

    /// Defaults as in Keras (`epsilon` 1e-7).
    public init(learningRate: Double = 0.001, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-7) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func update(_ variables: [Variable], gradients: [Tensor?]) {
        step += 1
        let c1 = 1 - pow(beta1, Double(step))
        let c2 = 1 - pow(beta2, Double(step))
        withoutRecording {
            for (v, g) in zip(variables, gradients) {
                guard let g else { continue }
                let key = ObjectIdentifier(v)
                let (m0, v0) = moments[key] ?? (g * 0, g * 0)
                let m = beta1 * m0 + (1 - beta1) * g
                let s = beta2 * v0 + (1 - beta2) * g * g
                m.evaluate()  // kept across steps: computed once, not inside every later step's chain
                s.evaluate()
                moments[key] = (m, s)
                v.assignSub(learningRate * (m / c1) / (sqrt(s / c2) + epsilon))
            }
        }
    }
}
