import Foundation
import TapeCL

// An optimizer's state in a safetensors file, so that a resumed run takes the same steps, bit for
// bit, as one that was never stopped.

extension Optimizer {
    /// No state, by default: an optimizer of your own saves nothing unless it says what it keeps.
    public func state(_ names: [String: Variable]) -> [String: Tensor] { [:] }

    /// By default, only an empty state is accepted.
    public func setState(_ state: [String: Tensor], _ names: [String: Variable]) throws {
        guard state.isEmpty else {
            throw TapeError.shape(
                "\(Self.self) keeps no state, but the file holds \(WeightNames.list(state.keys.sorted()))")
        }
    }

    /// Writes the state this optimizer keeps for `layer`'s variables (SGD's velocities, Adam's
    /// moments and step count) as safetensors: `NAME.velocity`, `NAME.m`, `NAME.v`, `step`.
    ///
    /// ```swift
    /// try model.saveWeights(to: weightsURL)
    /// try optimizer.saveState(of: model, to: stateURL)
    /// // later, in another process: the same steps follow as if it had never stopped
    /// try model.loadWeights(from: weightsURL)
    /// try optimizer.loadState(of: model, from: stateURL)
    /// ```
    /// - Throws: `TapeError.argument` naming the file (see ``saveSafetensors(_:to:)``).
    public func saveState(of layer: any Layer, to url: URL) throws {
        try saveSafetensors(state(layer.namedVariables), to: url)
    }

    /// Sets the state for `layer`'s variables from a file ``saveState(of:to:)`` wrote; all or nothing.
    /// - Throws: `TapeError.argument` for a file that cannot be read; `TapeError.shape` naming every
    ///   missing, unexpected or mis-shaped entry.
    public func loadState(of layer: any Layer, from url: URL) throws {
        let tensors = try loadSafetensors(from: url, on: .host)
        do { try setState(tensors, layer.namedVariables) } catch TapeError.shape(let problems) {
            throw TapeError.shape("loadState: \(url.path): \(problems)")
        }
    }
}

/// Checks `state` against what `expected` says (each name's shape and dtype) and gives the
/// tensors on each named variable's device.
/// - Throws: `TapeError.shape` naming every missing, unexpected and mis-shaped entry.
func matched(
    _ state: [String: Tensor], _ expected: [String: (shape: [Int], dtype: DType, device: Device)]
) throws -> [String: Tensor] {
    let differences = Differences(state, expected: expected.mapValues { ($0.shape, $0.dtype) })
    var problems = differences.absentAndExtra
    for name in differences.misshaped {
        let (t, e) = (state[name]!, expected[name]!)
        problems.append("\(WeightNames.list([name])) is \(t.shape) \(t.dtype), not \(e.shape) \(e.dtype)")
    }
    guard problems.isEmpty else { throw TapeError.shape(problems.joined(separator: "; ")) }
    return Dictionary(uniqueKeysWithValues: state.map { ($0.key, $0.value.to(expected[$0.key]!.device)) })
}

extension SGD {
    public func state(_ names: [String: Variable]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, v) in names {
            if let velocity = velocity[ObjectIdentifier(v)] { out[name + ".velocity"] = velocity }
        }
        return out
    }

    /// The file must hold a velocity for each of `names`' variables (SGD with momentum keeps one
    /// after the first step), or none at all (a fresh optimizer, or no momentum).
    public func setState(_ state: [String: Tensor], _ names: [String: Variable]) throws {
        let expected =
            state.isEmpty
            ? [:]
            : names.reduce(into: [:]) { e, item in
                e[item.key + ".velocity"] = (item.value.shape, item.value.dtype, item.value.value.device)
            }
        let tensors = try matched(state, expected)
        velocity = [:]
        for (name, v) in names { if let t = tensors[name + ".velocity"] { velocity[ObjectIdentifier(v)] = t } }
    }
}

extension Adam {
    public func state(_ names: [String: Variable]) -> [String: Tensor] {
        var out: [String: Tensor] = ["step": Tensor(Double(step), dtype: .float64)]
        for (name, v) in names {
            guard let (m, s) = moments[ObjectIdentifier(v)] else { continue }
            out[name + ".m"] = m
            out[name + ".v"] = s
        }
        return out
    }

    /// The file must hold `step` and, once a step was taken, both moments of each of `names`' variables.
    public func setState(_ state: [String: Tensor], _ names: [String: Variable]) throws {
        var expected: [String: (shape: [Int], dtype: DType, device: Device)] = ["step": ([], .float64, .host)]
        if state.keys.contains(where: { $0 != "step" }) {
            for (name, v) in names {
                expected[name + ".m"] = (v.shape, v.dtype, v.value.device)
                expected[name + ".v"] = (v.shape, v.dtype, v.value.device)
            }
        }
        let tensors = try matched(state, expected)
        let count = tensors["step"]!.scalars(as: Double.self)[0]
        guard count >= 0, count == count.rounded(), count < 1e15 else {
            throw TapeError.shape("'step' is \(count), not a count of steps")
        }
        step = Int(count)
        moments = [:]
        for (name, v) in names {
            if let m = tensors[name + ".m"], let s = tensors[name + ".v"] { moments[ObjectIdentifier(v)] = (m, s) }
        }
    }
}

extension RMSprop {
    public func state(_ names: [String: Variable]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, v) in names {
            let key = ObjectIdentifier(v)
            if let s = squares[key] { out[name + ".square_avg"] = s }
            if let m = means[key] { out[name + ".grad_avg"] = m }
            if let b = buffers[key] { out[name + ".momentum_buffer"] = b }
        }
        return out
    }

    /// The file must hold, once a step was taken, each of `names`' variables' squares, and their
    /// means when centred and momentum buffers with momentum.
    public func setState(_ state: [String: Tensor], _ names: [String: Variable]) throws {
        var expected: [String: (shape: [Int], dtype: DType, device: Device)] = [:]
        if !state.isEmpty {
            for (name, v) in names {
                let entry = (v.shape, v.dtype, v.value.device)
                expected[name + ".square_avg"] = entry
                if centered { expected[name + ".grad_avg"] = entry }
                if momentum != 0 { expected[name + ".momentum_buffer"] = entry }
            }
        }
        let tensors = try matched(state, expected)
        (squares, means, buffers) = ([:], [:], [:])
        for (name, v) in names {
            let key = ObjectIdentifier(v)
            squares[key] = tensors[name + ".square_avg"]
            means[key] = tensors[name + ".grad_avg"]
            buffers[key] = tensors[name + ".momentum_buffer"]
        }
    }
}
