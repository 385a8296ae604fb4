import Foundation
import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// Records ops for reverse-mode differentiation, with the semantics of TensorFlow's `tf.GradientTape`.
///
/// - Ops run inside ``record(_:)`` are recorded when one of their inputs is watched: a tensor
///   passed to ``watch(_:)-(Tensor)``, a trainable ``Variable`` read inside `record` (unless
///   `watchAccessedVariables` is false), or the output of a recorded op.
/// - ``gradient(of:wrt:outputGradients:unconnected:)->[Tensor?]`` walks the entries backwards. A
///   non-persistent tape frees each entry's saved tensors as soon as its backward step has run,
///   and can compute one gradient; a persistent one answers any number of times.
/// - Backward rules are ordinary ops, so a tape active around a `gradient` call records it:
///   nested tapes give higher derivatives.
///
/// ```swift
/// let x = Variable(-2.0)
/// let tape = GradientTape()
/// let y = tape.record { x * x }
/// let dy = try tape.gradient(of: y, wrt: x)     // -4.0
/// ```
///
/// Thread safety: a tape's state is guarded by a lock, so ops recorded from several threads at once
/// (tasks of one `record`, a tape shared by workers) are recorded one at a time; `gradient` holds
/// the lock for its walk. (TensorFlow gives each thread its own tapes; sharing one here is safe
/// but serialises the recording.)
public final class GradientTape: @unchecked Sendable {
    /// Whether `gradient` may be called more than once (entries are then kept until the tape goes away).
    public let persistent: Bool
    /// Whether trainable variables read inside `record` are watched without calling `watch`.
    public let watchAccessedVariables: Bool

    /// One recorded op: where each input comes from, the output's id, and what the backward rule
    /// needs (a one-shot tape drops it once used).
    struct Entry {
        let op: Op
        let inputs: SmallArray<Link>
        let outputID: TensorID
        var saved: Saved?
    }
    /// An input of an entry: its id and its ``producers`` value (or `untracked`: no gradient flows to it).
    struct Link {
        let id: TensorID
        let producer: Int
    }
    static let leaf = -1
    static let untracked = -2
    // The lock below serialises every access to the state, so the fields read for each recorded
    // op skip Swift's dynamic exclusivity checks (3% of W1's instructions on the host).
    @exclusivity(unchecked) var entries: [Entry] = []
    /// How many entries the last tape that computed a gradient held (at most 65,536): a loop records
    /// the same graph every step, so a new tape reserves that many at its first op instead of
    /// growing its array by doubling (copying every entry a dozen times; 4% of W1 on the host).
    private static let entriesLastTime = Atomic<Int>(0)
    /// The tensors this tape differentiates through, each with the index of the entry that made it,
    /// or `leaf` for a watched tensor or a variable's value. Recording an op looks each input up
    /// once; the backward walk then follows indices, with no lookup per entry.
    @exclusivity(unchecked) var producers: [TensorID: Int] = [:]
    private(set) var variables: [Variable] = []
    var variableReads: [ObjectIdentifier: Set<TensorID>] = [:]
    @exclusivity(unchecked) private var paused = 0
    private var consumed = false
    /// Guards every field below and above. Recursive: a persistent tape records onto itself during
    /// its own `gradient`, and `watch([...])` calls `watch(_:)`.
    let lock = NSRecursiveLock()
    // For `explainGradient`: what was seen while stopped, and before `reset()`.
    var usedWhilePaused: Set<TensorID> = []
    var beforeReset: Set<TensorID> = []
    var variablesBeforeReset: Set<ObjectIdentifier> = []

    /// - Parameters:
    ///   - persistent: keep the entries after `gradient`, so it can be called again.
    ///   - watchAccessedVariables: watch trainable variables read inside `record` on their own.
    public init(persistent: Bool = false, watchAccessedVariables: Bool = true) {
        self.persistent = persistent
        self.watchAccessedVariables = watchAccessedVariables
    }

    /// Runs `body` with this tape recording; re-entrant; returns what `body` returns.
    public func record<R>(_ body: () throws -> R) rethrows -> R {
        if Recorder.active.tapes.contains(where: { $0 === self }) { return try body() }
        return try Recorder.with({ tapes, _ in tapes.append(self) }, body)
    }

    /// Runs `body` inside `record` without recording on this tape (other tapes still record).
    public func stopRecording<R>(_ body: () throws -> R) rethrows -> R {
        lock.withLock { paused += 1 }
        defer { lock.withLock { paused -= 1 } }
        return try body()
    }

    /// Forgets everything recorded and watched so far; recording goes on.
    public func reset() {
        lock.lock()
        defer { lock.unlock() }
        beforeReset.formUnion(producers.keys)
        variablesBeforeReset.formUnion(variables.map(ObjectIdentifier.init))
        entries = []
        producers = [:]
        variables = []
        variableReads = [:]
        consumed = false
    }

    /// Watches a tensor: ops on it are recorded and it can be a source. Integer tensors are ignored.
    public func watch(_ tensor: Tensor) {
        lock.lock()
        defer { lock.unlock() }
        if tensor.dtype.isFloatingPoint && producers[tensor.id] == nil { producers[tensor.id] = Self.leaf }
    }

    /// Watches a variable, trainable or not.
    public func watch(_ variable: Variable) {
        let value = variable.stored
        guard value.dtype.isFloatingPoint else { return }
        lock.lock()
        defer { lock.unlock() }
        track(variable, value)
    }

    /// Watches each tensor or variable of `items`.
    public func watch(_ items: [any TensorConvertible]) {
        for item in items {
            if let v = item as? Variable { watch(v) } else if let t = item as? Tensor { watch(t) }
        }
    }

    /// The variables this tape watches, in the order they were created (as TensorFlow lists them).
    public var watchedVariables: [Variable] { lock.withLock { variables.sorted { $0.serial < $1.serial } } }

    private func track(_ variable: Variable, _ value: Tensor) {
        let key = ObjectIdentifier(variable)
        if variableReads[key] == nil { variables.append(variable) }
        variableReads[key, default: []].insert(value.id)
        if producers[value.id] == nil { producers[value.id] = Self.leaf }
    }

    func noteRead(_ variable: Variable, _ value: Tensor) {
        lock.lock()
        defer { lock.unlock() }
        guard paused == 0 else { return }
        let watched = variableReads[ObjectIdentifier(variable)] != nil
        if watched || (watchAccessedVariables && variable.trainable && value.dtype.isFloatingPoint) {
            track(variable, value)
        }
    }

    func record(_ op: Op, _ inputs: Inputs, _ output: Tensor, _ parameters: Parameters) {
        lock.lock()
        defer { lock.unlock() }
        let links = SmallArray(count: inputs.count) { i in
            Link(id: inputs[i].id, producer: producers[inputs[i].id] ?? Self.untracked)
        }
        guard links.contains(where: { $0.producer != Self.untracked }) else { return }
        guard paused == 0 else {
            usedWhilePaused.formUnion(inputs.map(\.id))
            return
        }
        let n = inputs.count
        var slots: [Saved.Input] = []
        slots.reserveCapacity(n)  // one allocation of the right size (a map grows its array)
        for i in 0..<n {
            let keep =
                switch op.saves {
                case .nothing, .output: false
                case .inputs, .inputsAndOutput: true
                case .crossed: links[n - 1 - i].producer != Self.untracked  // the other input needs a cotangent
                }
            if keep { inputs[i].handle?.settle() }
            let needs = links[i].producer != Self.untracked
            slots.append(Saved.Input(shape: inputs[i].shape, needs: needs, value: keep ? inputs[i] : nil))
        }
        let keepOutput: Bool =
            switch op.saves {
            case .output, .inputsAndOutput: true
            default: false
            }
        if keepOutput { output.handle?.settle() }
        // Moved, not copied, into the entry: a copy costs two atomic reference counts per recorded op.
        let saved = Saved(inputs: consume slots, output: keepOutput ? output : nil, parameters: parameters)
        if entries.isEmpty {
            let expected = Self.entriesLastTime.load(ordering: .relaxed)
            entries.reserveCapacity(expected)
            producers.reserveCapacity(producers.count + expected)
        }
        entries.append(Entry(op: op, inputs: links, outputID: output.id, saved: consume saved))
        producers[output.id] = entries.count - 1
    }

    // MARK: Gradients

    /// What `gradient` gives for a source that the target does not depend on.
    public enum UnconnectedGradients: Sendable { case none, zero }

    /// The gradient of `target` (summed, if not a scalar) with respect to one source.
    /// - Returns: a tensor of the source's shape, or `nil` when the target does not depend on it
    ///   (see ``explainGradient(of:wrt:)`` for why).
    /// - Throws: `TapeError/tape(_:)` on a second call on a non-persistent tape.
    public func gradient(
        of target: some TensorConvertible, wrt source: some TensorConvertible,
        outputGradients: Tensor? = nil, unconnected: UnconnectedGradients = .none
    ) throws -> Tensor? {
        try gradient(of: target, wrt: [source], outputGradients: outputGradients, unconnected: unconnected)[0]
    }

    /// The gradients of `target` with respect to each source (Variables and Tensors may mix).
    ///
    /// - Parameters:
    ///   - target: what to differentiate (summed when not a scalar).
    ///   - sources: the tensors and variables to differentiate with respect to.
    ///   - outputGradients: the cotangent of `target` (default: ones, i.e. the gradient of its sum).
    ///   - unconnected: `.none` gives `nil` for a source the target does not depend on; `.zero` zeros.
    public func gradient(
        of target: some TensorConvertible, wrt sources: [any TensorConvertible],
        outputGradients: Tensor? = nil, unconnected: UnconnectedGradients = .none
    ) throws -> [Tensor?] {
        try gradient(of: target, wrt: sources, outputGradients: outputGradients, unconnected: unconnected) { _, _ in }
    }

    /// The gradients of `target` with respect to each source, each also handed to `whenReady` as
    /// soon as the walk has finished it — before the walk goes on to earlier entries.
    ///
    /// A source's gradient is final once the walk has passed the first recorded use of every value
    /// it stands for, so the sources used last (a network's last layer) come first. This is the
    /// hook a data-parallel wrapper needs to start communicating gradients while the walk runs
    /// (as PyTorch's DDP does with its post-accumulate hooks). `whenReady` is called once per
    /// source, in the order they become final, with the value the returned array holds.
    ///
    /// ```swift
    /// let grads = try tape.gradient(of: loss, wrt: [w1, w2]) { index, gradient in
    ///     print("gradient \(index) is ready")     // 1 first: w2 is used last in the forward pass
    /// }
    /// ```
    public func gradient(
        of target: some TensorConvertible, wrt sources: [any TensorConvertible],
        outputGradients: Tensor? = nil, unconnected: UnconnectedGradients = .none,
        whenReady: (_ index: Int, _ gradient: Tensor?) throws -> Void
    ) throws -> [Tensor?] {
        lock.lock()
        defer { lock.unlock() }
        guard !consumed else {
            throw TapeError.tape(
                "GradientTape.gradient: this tape is not persistent and was already used for a gradient; "
                    + "create it with GradientTape(persistent: true) to compute more than one"
            )
        }
        let y = Self.tensor(target)
        if let g = outputGradients, g.shape != y.shape || g.dtype != y.dtype {
            throw TapeError.shape(
                "GradientTape.gradient: outputGradients is \(Shape.describe(g.shape)) \(g.dtype) for a "
                    + "target of \(Shape.describe(y.shape)) \(y.dtype)"
            )
        }
        if ErrorScope.isFailing || y.isInert { return try inertGradients(of: y, wrt: sources, whenReady: whenReady) }
        let ids = sources.map(sourceIDs)
        var gradients = [Tensor?](repeating: nil, count: sources.count)
        var pending = ids.map { Set($0).count }  // a source is final when all its ids are
        var sourcesOf: [TensorID: [Int]] = [:]
        for (i, list) in ids.enumerated() { for id in Set(list) { sourcesOf[id, default: []].append(i) } }
        var found: [TensorID: Tensor] = [:]
        func finish(_ i: Int) throws {
            let parts = ids[i].compactMap { found[$0] }
            let s = Self.tensor(sources[i])
            gradients[i] =
                if let first = parts.first { parts.dropFirst().reduce(first, +) } else {
                    unconnected == .zero && s.dtype.isFloatingPoint ? Tensor.zeros(like: s) : nil
                }
            try whenReady(i, gradients[i])
        }
        for i in sources.indices where pending[i] == 0 { try finish(i) }
        if y.dtype.isFloatingPoint {
            let seed = outputGradients ?? Tensor.ones(shape: y.shape, dtype: y.dtype, on: y.device)
            try backward(from: y, seed: seed, to: Set(sourcesOf.keys)) { id, g in
                found[id] = g
                for i in sourcesOf[id] ?? [] {
                    pending[i] -= 1
                    if pending[i] == 0 { try finish(i) }
                }
            }
        } else {
            for i in sources.indices where pending[i] > 0 { try finish(i) }
        }
        Self.entriesLastTime.store(Swift.min(entries.count, 1 << 16), ordering: .relaxed)
        if !persistent { consume() }
        for case let g? in gradients { g.evaluate() }  // fused chains run now; the values they read go
        return gradients
    }

    /// Inside `withErrors` after its first error: an inert gradient for every source (nothing is
    /// walked), and a one-shot tape is used up as by a walk. An inert target outside its scope
    /// is an error naming the scope's.
    private func inertGradients(
        of y: Tensor, wrt sources: [any TensorConvertible], whenReady: (Int, Tensor?) throws -> Void
    ) throws -> [Tensor?] {
        if !ErrorScope.isFailing, let cause = y.handle?.inertCause {
            throw TapeError.argument("GradientTape.gradient: the target \(Storage.inertMessage(cause))")
        }
        let gradients: [Tensor?] = sources.map { Tensor.inert(like: Self.tensor($0)) }
        for (i, g) in gradients.enumerated() { try whenReady(i, g) }
        if !persistent { consume() }
        return gradients
    }

    /// The tape walk: cotangents flow from `target` back to the `wanted` ids. `final` gets each
    /// wanted id's cotangent (or nil) once, as soon as no entry left to walk can add to it: after
    /// the walk passes the id's first use (see ``WalkPlan`` and ``Flow``).
    private func backward(
        from target: Tensor, seed: Tensor, to wanted: Set<TensorID>, final: (TensorID, Tensor?) throws -> Void
    ) throws {
        if !persistent { paused += 1 }  // a one-shot tape does not record its own backward pass
        defer { if !persistent { paused -= 1 } }
        let n = entries.count  // a persistent tape may record onto itself meanwhile
        func link(_ id: TensorID) -> Link {
            Link(id: id, producer: producers[id].map { $0 < n ? $0 : Self.untracked } ?? Self.untracked)
        }
        let plan = WalkPlan(entries[..<n], wanted: wanted) { link($0).producer }
        var flow = Flow(count: n)
        flow.add(seed, to: link(target.id))
        for id in plan.unused { try final(id, flow.value(link(id))) }
        var next = 0  // into plan.finalAt
        for k in stride(from: n - 1, through: 0, by: -1) {
            // A one-shot tape moves the saved values out: they go back to the allocator after this step.
            if let dy = flow.take(k), var saved = persistent ? entries[k].saved : entries[k].saved.take() {
                let links = entries[k].inputs
                for i in saved.inputs.indices where saved.inputs[i].needs {
                    saved.inputs[i].needs = plan.needs(links[i])
                }
                if saved.inputs.contains(where: \.needs) {
                    for (i, g) in entries[k].op.vjp(saved, dy).enumerated() where saved.inputs[i].needs {
                        // unbroadcast, once per input
                        if let g = g?.summed(toShape: saved.inputs[i].shape) { flow.add(g, to: links[i]) }
                    }
                }
            }
            while next < plan.finalAt.count && plan.finalAt[next].entry == k {
                try final(plan.finalAt[next].id, flow.value(link(plan.finalAt[next].id)))
                next += 1
            }
        }
    }

    private func consume() {
        consumed = true
        for k in entries.indices { entries[k].saved = nil }
    }

    /// The tensor ids standing for a source on this tape: a tensor's own id when watched, every
    /// value a variable had when this tape saw it read.
    func sourceIDs(_ source: any TensorConvertible) -> [TensorID] {
        if let v = source as? Variable { return Array(variableReads[ObjectIdentifier(v)] ?? []) }
        if let t = source as? Tensor, producers[t.id] != nil { return [t.id] }
        return []
    }

    /// A target or source as a tensor, without counting as a variable access.
    static func tensor(_ item: some TensorConvertible) -> Tensor {
        (item as? Variable)?.stored ?? item.tensor(like: nil)
    }

    /// Whether a backward step can still run (false after `gradient` on a non-persistent tape).
    package var isConsumed: Bool { lock.withLock { consumed } }
}
