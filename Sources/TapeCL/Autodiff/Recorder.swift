/// The active tapes and forward accumulators (task-locals, so concurrent tasks each have their
/// own), and the one place where an op reaches them.
enum Recorder {
    @TaskLocal static var tapes: [GradientTape] = []
    @TaskLocal static var accumulators: [ForwardAccumulator] = []

    /// Called by ``Op/apply(_:_:)`` after every differentiable op with a float output.
    static func record(_ op: Op, _ inputs: [Tensor], _ output: Tensor, _ attributes: Attributes) {
        let tapes = Recorder.tapes, accumulators = Recorder.accumulators
        if tapes.isEmpty && accumulators.isEmpty { return }
        for tape in tapes { tape.record(op, inputs, output, attributes) }
        for accumulator in accumulators { accumulator.propagate(op, inputs, output, attributes) }
    }

    /// A variable was read: every active tape that watches it tracks the value read.
    static func noteRead(_ variable: Variable, _ value: Tensor) {
        for tape in tapes { tape.noteRead(variable, value) }
        for accumulator in accumulators { accumulator.noteRead(variable, value) }
    }

    /// Runs `body` with no tape or accumulator recording (optimizer updates, custom forwards).
    static func unrecorded<R>(_ body: () throws -> R) rethrows -> R {
        try $tapes.withValue([]) { try $accumulators.withValue([], operation: body) }
    }
}
