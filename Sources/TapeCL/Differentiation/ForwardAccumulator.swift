import Foundation
@_spi(Runtime) import TapeCLRuntime

/// Forward-mode differentiation: pushes tangents along with values (dual numbers, seed 004).
///
/// Each op run inside ``record(_:)`` on an input with a tangent gets the tangent of its output
/// from the op's `jvp` rule: `ẏ = J·ẋ`. One pass gives a Jacobian-vector product; around a tape's
/// `gradient` it gives a Hessian-vector product (forward over reverse).
///
/// ```swift
/// let x = Tensor(3.0)
/// let acc = ForwardAccumulator(primals: [x], tangents: [Tensor(1.0)])
/// let z = acc.record { sin(x * x) }
/// acc.jvp(z)                      // cos(9)·6 ≈ -5.4668
/// ```
///
/// Thread safety: as ``GradientTape``, the state is guarded by a (recursive) lock; ops pushed from
/// several threads at once are handled one at a time.
public final class ForwardAccumulator: @unchecked Sendable {
    private var tangents: [TensorID: Tensor] = [:]
    private var variableTangents: [ObjectIdentifier: Tensor] = [:]
    private var paused = 0
    /// Guards the fields above; recursive because a rule's own ops come back through `propagate`.
    private let lock = NSRecursiveLock()

    /// - Parameters:
    ///   - primals: the tensors or variables whose tangents are given.
    ///   - tangents: one per primal, of its shape and dtype.
    /// - Precondition: as many tangents as primals, each matching its primal's shape.
    public init(primals: [any TensorConvertible], tangents: [Tensor]) {
        guard primals.count == tangents.count else {
            stop(
                TapeError.argument("ForwardAccumulator: \(primals.count) primals but \(tangents.count) tangents"),
                else: ())
            return
        }
        for (p, t) in zip(primals, tangents) {
            let value = GradientTape.tensor(p)
            guard value.shape == t.shape else {
                let (given, primal) = (Shape.describe(t.shape), Shape.describe(value.shape))
                let message = "ForwardAccumulator: tangent \(given) for a primal of \(primal)"
                stop(TapeError.shape(message), else: ())
                self.tangents = [:]
                variableTangents = [:]
                return
            }
            let t = t.dtype == value.dtype ? t : t.cast(to: value.dtype)
            self.tangents[value.id] = t
            if let v = p as? Variable { variableTangents[ObjectIdentifier(v)] = t }
        }
    }

    /// Runs `body` with this accumulator pushing tangents; re-entrant.
    public func record<R>(_ body: () throws -> R) rethrows -> R {
        if Recorder.active.accumulators.contains(where: { $0 === self }) { return try body() }
        return try Recorder.with({ _, accumulators in accumulators.append(self) }, body)
    }

    /// The tangent of `value` (the directional derivative along the given tangents), or `nil` when
    /// it does not depend on the primals; `.zero` gives zeros instead.
    public func jvp(_ value: some TensorConvertible, unconnected: GradientTape.UnconnectedGradients = .none) -> Tensor?
    {
        let t = GradientTape.tensor(value)
        if let found = lock.withLock({ tangents[t.id] }) { return found }
        return unconnected == .zero ? Tensor.zeros(like: t) : nil
    }

    func noteRead(_ variable: Variable, _ value: Tensor) {
        lock.lock()
        defer { lock.unlock() }
        if let t = variableTangents[ObjectIdentifier(variable)], tangents[value.id] == nil { tangents[value.id] = t }
    }

    func propagate(_ op: Op, _ inputs: Inputs, _ output: Tensor, _ parameters: Parameters) {
        lock.lock()
        defer { lock.unlock() }
        guard paused == 0 else { return }
        let dx = inputs.map { tangents[$0.id] }
        guard dx.contains(where: { $0 != nil }) else { return }
        paused += 1  // the rule's own ops carry no tangent of this accumulator
        defer { paused -= 1 }
        let saved = Saved(
            inputs: zip(inputs, dx).map { Saved.Input(shape: $0.shape, needs: $1 != nil, value: $0) },
            output: output, parameters: parameters)
        guard let t = op.jvp(saved, dx) else { return }
        tangents[output.id] = t.shape == output.shape ? t : t.broadcast(to: output.shape)  // broadcast, once
    }
}
