import Foundation
import TapeCL

/// A learning rate that depends on the step (0, 1, 2, …), as Keras's schedules give it; set an
/// optimizer's `learningRate` from it before each step.
///
/// ```swift
/// let schedule = LearningRateSchedule.cosineDecay(initial: 0.001, steps: 1000, warmup: 100)
/// for step in 0..<1100 {
///     optimizer.learningRate = schedule(step)
///     optimizer.update(model.variables, gradients: gradients)
/// }
/// ```
public enum LearningRateSchedule: Sendable {
    /// The same rate at every step.
    case constant(Double)
    /// A linear warm-up from 0 to `initial` over `warmup` steps, then `initial · ½(1 + cos(π·t/steps))`
    /// for the `t`-th step after it, and 0 from `steps` on (Keras's `CosineDecay` with
    /// `warmup_target`; without warm-up, `CosineDecay(initial, steps)`).
    case cosineDecay(initial: Double, steps: Int, warmup: Int = 0)
    /// `values[0]` up to and including step `boundaries[0]`, `values[i]` up to `boundaries[i]`, the
    /// last value after the last boundary (Keras's `PiecewiseConstantDecay`); `values` has one more
    /// element than `boundaries`.
    case piecewise(boundaries: [Int], values: [Double])

    /// The rate at `step`.
    /// - Precondition: `step ≥ 0`; for `.piecewise`, one more value than boundaries.
    public func callAsFunction(_ step: Int) -> Double {
        switch self {
        case .constant(let rate):
            return rate
        case .cosineDecay(let initial, let steps, let warmup):
            if step < warmup { return initial * Double(step) / Double(warmup) }
            let t = Double(min(step - warmup, steps)) / Double(Swift.max(steps, 1))
            return initial * 0.5 * (1 + cos(Double.pi * t))
        case .piecewise(let boundaries, let values):
            guard values.count == boundaries.count + 1 else {
                let message =
                    "LearningRateSchedule.piecewise: \(values.count) values for \(boundaries.count) boundaries; "
                    + "give one more value than boundaries"
                return stop(TapeError.argument(message), else: 0)
            }
            return values[boundaries.firstIndex { step <= $0 } ?? boundaries.count]
        }
    }
}

/// Scales `gradients` so that their global norm `√Σ‖g‖²` is at most `clipNorm`
/// (`tf.clip_by_global_norm`): each is multiplied by `clipNorm / max(norm, clipNorm)`. `nil`
/// entries stay `nil`. Computed on the gradients' device; nothing is read back.
///
/// ```swift
/// let (clipped, norm) = clipByGlobalNorm(try tape.gradient(of: loss, wrt: model.variables), clipNorm: 1)
/// optimizer.update(model.variables, gradients: clipped)
/// ```
/// - Returns: the scaled gradients and the global norm before scaling (a scalar tensor).
public func clipByGlobalNorm(_ gradients: [Tensor?], clipNorm: Double) -> ([Tensor?], Tensor) {
    let present = gradients.compactMap { $0 }
    guard let first = present.first else { return (gradients, Tensor(0)) }
    let squares = present.dropFirst().reduce((first * first).sum()) { $0 + ($1 * $1).sum() }
    let norm = sqrt(squares)
    let scale = clipNorm / maximum(norm, Tensor(clipNorm, dtype: norm.dtype).to(norm.device))
    return (gradients.map { $0.map { $0 * scale } }, norm)
}
