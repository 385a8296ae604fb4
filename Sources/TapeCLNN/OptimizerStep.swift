import TapeCL

// One optimizer step, all or nothing: inside `withErrors` a step either changes every variable
// (and the optimizer's state) or nothing.

/// Computes one step's new values, then assigns them together.
///
/// `newValue(v, g)` gives variable `v`'s value after the step from its gradient `g`, keeping
/// whatever state it changes aside (the optimizer commits that when this returns true). The
/// variables and gradients are checked first (as many of each; each gradient of its variable's
/// shape, dtype and device); each new value is then computed, and only if no error came up
/// (inside `withErrors`: a kernel that failed, an earlier error) is any of them assigned.
/// - Returns: whether the step was taken; false inside `withErrors` after an error.
func takeStep(
    _ optimizer: String, _ variables: [Variable], _ gradients: [Tensor?], _ newValue: (Variable, Tensor) -> Tensor
) -> Bool {
    if insideFailedScope { return false }
    if let error = stepError(optimizer, variables, gradients) { return stop(error, else: false) }
    var values: [(Variable, Tensor)] = []
    withoutRecording {
        for (v, g) in zip(variables, gradients) {
            guard let g else { continue }
            let value = newValue(v, g)
            value.evaluate()
            values.append((v, value))
        }
    }
    if insideFailedScope { return false }
    for (v, value) in values { v.assign(value) }
    return true
}

/// The first thing wrong with a step's variables and gradients: their counts, or a gradient that
/// does not fit its variable or comes from a scope of `withErrors` that has ended.
private func stepError(_ optimizer: String, _ variables: [Variable], _ gradients: [Tensor?]) -> TapeError? {
    guard variables.count == gradients.count else {
        return TapeError.argument(
            "\(optimizer).update: \(variables.count) variables but \(gradients.count) gradients; give one gradient "
                + "(or nil) per variable")
    }
    for (i, (v, g)) in zip(variables, gradients).enumerated() {
        guard let g else { continue }
        let which = "the gradient of variable \(i)\(v.name.map { " ('\($0)')" } ?? "")"
        if let cause = g.inertCause {
            return TapeError.argument("\(optimizer).update: \(which) \(inertMessage(cause))")
        }
        let value = v.stored
        if g.shape != value.shape || g.dtype != value.dtype {
            return TapeError.shape(
                "\(optimizer).update: \(which) is \(g.shape) \(g.dtype), and the variable \(value.shape) \(value.dtype)"
            )
        }
        if g.device != value.device {
            return TapeError.device(
                "\(optimizer).update: \(which) is on \(g.device), and the variable on \(value.device); move it with "
                    + "to(_:)")
        }
    }
    return nil
}
