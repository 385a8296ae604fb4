import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// The active tapes and forward accumulators (one task-local, so concurrent tasks each have their
/// own and an op reads it once), and the one place where an op reaches them.
enum Recorder {
    /// A class, so that reading the task-local (once per op) copies one reference, not two arrays.
    final class Active: Sendable {
        let tapes: [GradientTape]
        let accumulators: [ForwardAccumulator]
        let isEmpty: Bool
        init(tapes: [GradientTape] = [], accumulators: [ForwardAccumulator] = []) {
            (self.tapes, self.accumulators, isEmpty) = (tapes, accumulators, tapes.isEmpty && accumulators.isEmpty)
            if !isEmpty { Recorder.live.add(1, ordering: .releasing) }
        }
        deinit { if !isEmpty { Recorder.live.subtract(1, ordering: .releasing) } }
        static let none = Active()
    }
    @TaskLocal static var active = Active.none
    /// How many non-empty active sets exist, in any task (a task that holds one, even past the end of
    /// the `record` that made it, keeps it alive): while there is none, an op does not read the
    /// task-local (a backward pass outside `record`, as W1's gradient, never reads it).
    static let live = Atomic<Int>(0)

    /// Called by ``Op/apply(_:_:)`` after every differentiable op with a float output.
    static func record(_ op: Op, _ inputs: Inputs, _ output: Tensor, _ parameters: Parameters) {
        if live.load(ordering: .acquiring) == 0 { return }
        let active = Recorder.active
        if active.isEmpty { return }
        active.tapes.withUnsafeBufferPointer { tapes in  // borrowed: no reference count per tape
            for i in tapes.indices { tapes[i].record(op, inputs, output, parameters) }
        }
        for accumulator in active.accumulators { accumulator.propagate(op, inputs, output, parameters) }
    }

    /// A variable was read: every active tape that watches it tracks the value read.
    static func noteRead(_ variable: Variable, _ value: Tensor) {
        let active = Recorder.active
        for tape in active.tapes { tape.noteRead(variable, value) }
        for accumulator in active.accumulators { accumulator.noteRead(variable, value) }
    }

    /// Runs `body` with `change` made to the active set (a tape or an accumulator joining it).
    static func with<R>(
        _ change: (inout [GradientTape], inout [ForwardAccumulator]) -> Void, _ body: () throws -> R
    )
        rethrows -> R
    {
        var (tapes, accumulators) = (active.tapes, active.accumulators)
        change(&tapes, &accumulators)
        return try $active.withValue(Active(tapes: tapes, accumulators: accumulators), operation: body)
    }

    /// Runs `body` with no tape or accumulator recording (optimizer updates, custom forwards).
    static func unrecorded<R>(_ body: () throws -> R) rethrows -> R {
        try $active.withValue(Active.none, operation: body)
    }
}

/// Runs `body` with no tape and no forward accumulator recording, and returns what it returns:
/// an optimizer's update, a metric, anything that must not become part of a gradient. Tapes
/// active around the call see none of its ops (a nested `record` inside starts recording again).
///
/// ```swift
/// withoutRecording { w.assignSub(0.1 * g) }
/// ```
public func withoutRecording<R>(_ body: () throws -> R) rethrows -> R {
    try Recorder.unrecorded(body)
}
