@_spi(Runtime) import TapeCLRuntime

/// Why ``GradientTape/gradient(of:wrt:outputGradients:unconnected:)->[Tensor?]``
/// gives `nil` for a source: the question TensorFlow users ask most, answered.
public enum NilGradientReason: Sendable, Equatable, CustomStringConvertible {
    /// The source is an integer tensor; integers never carry gradients.
    case integerDType
    /// A variable with `trainable: false` that was not watched explicitly.
    case notTrainable
    /// A tensor never passed to `watch`, or a variable never read inside `record` (or the tape
    /// has `watchAccessedVariables: false` and it was not watched).
    case notWatched
    /// The source was watched, but the ops that used it ran inside `stopRecording`.
    case usedOnlyWhileStopped
    /// The source or target was recorded before `reset()`, which forgot it.
    case recordedBeforeReset
    /// The target was not computed on this tape (before `record`, outside it, or from nothing watched).
    case targetNotRecorded
    /// Both are on the tape, but no recorded op leads from the source to the target.
    case notConnected

    public var description: String {
        switch self {
        case .integerDType: "the source has an integer dtype, and integers carry no gradient; cast it to float32 first"
        case .notTrainable:
            "the variable was created with trainable: false and was not watched; call tape.watch(variable)"
        case .notWatched:
            "the source was not watched: call tape.watch(x) for a tensor, or read the variable inside "
                + "tape.record (with watchAccessedVariables: true)"
        case .usedOnlyWhileStopped: "every op that used the source ran inside stopRecording, so none was recorded"
        case .recordedBeforeReset: "it was recorded before tape.reset(), which forgot it"
        case .targetNotRecorded: "the target was not computed inside tape.record from anything watched"
        case .notConnected: "the target does not depend on the source through any recorded op"
        }
    }
}

extension GradientTape {
    /// For each source, why its gradient is `nil` (`nil` here when there is a gradient).
    ///
    /// Works before and after `gradient`, also on a non-persistent tape (it keeps which op
    /// used which tensor, not the values).
    ///
    /// ```swift
    /// let x = Variable(2.0), y = Variable(3.0, trainable: false)
    /// let tape = GradientTape()
    /// let z = tape.record { x * y }
    /// tape.explainGradient(of: z, wrt: [x, y])   // [nil, .notTrainable]
    /// ```
    public func explainGradient(
        of target: some TensorConvertible, wrt sources: [any TensorConvertible]
    ) -> [NilGradientReason?] {
        lock.lock()
        defer { lock.unlock() }
        let y = Self.tensor(target)
        return sources.map { source in
            let s = Self.tensor(source)
            if !s.dtype.isFloatingPoint { return .integerDType }
            let ids = sourceIDs(source)
            if ids.isEmpty {
                if let v = source as? Variable {
                    if variablesBeforeReset.contains(ObjectIdentifier(v)) { return .recordedBeforeReset }
                    return v.trainable ? .notWatched : .notTrainable
                }
                return beforeReset.contains(s.id) ? .recordedBeforeReset : .notWatched
            }
            if ids.contains(y.id) { return nil }
            if producers[y.id] == nil { return beforeReset.contains(y.id) ? .recordedBeforeReset : .targetNotRecorded }
            var reach = Set(ids)
            for e in entries where e.inputs.contains(where: { reach.contains($0.id) }) { reach.insert(e.outputID) }
            if reach.contains(y.id) { return nil }
            return reach.isDisjoint(with: usedWhilePaused) ? .notConnected : .usedOnlyWhileStopped
        }
    }
}
