import Synchronization
@_spi(Runtime) import TapeCLRuntime

private let nextVariableSerial = Atomic<UInt64>(0)

/// A trainable parameter: a reference to a tensor value that can be reassigned.
///
/// - Arithmetic on a variable reads its value; reading it inside ``GradientTape/record(_:)``
///   marks it accessed, and a tape with `watchAccessedVariables` (the default) then watches it
///   if it is `trainable`.
/// - A variable combined with anything is a plain ``Tensor``: `Variable(1.5) + 1.0` is a
///   constant, not a variable.
///
/// ```swift
/// let w = Variable(Tensor.randomNormal(shape: [3, 2], seed: 1), name: "w")
/// let tape = GradientTape()
/// let loss = tape.record { (matmul(x, w) - y).sum() }
/// let g = try tape.gradient(of: loss, wrt: w)!
/// w.assignSub(0.1 * g)
/// ```
public final class Variable: TensorConvertible, Sendable, CustomStringConvertible {
    private let state: Mutex<Tensor>
    /// Whether tapes watch this variable on their own when it is read.
    public let trainable: Bool
    /// A label for printing and error messages.
    public let name: String?
    /// Creation order (``GradientTape/watchedVariables`` lists variables by it, as TensorFlow does).
    let serial = nextVariableSerial.add(1, ordering: .relaxed).newValue

    /// A variable holding `value`: `Variable(-2.0)`, `Variable(Tensor.zeros(shape: [3]), name: "b")`.
    public init(_ value: Tensor, trainable: Bool = true, name: String? = nil) {
        state = Mutex(value)
        self.trainable = trainable
        self.name = name
    }

    /// The current value. Reading it inside a tape's `record` counts as an access.
    public var value: Tensor {
        let v = stored
        Recorder.noteRead(self, v)
        return v
    }

    /// The value without telling any tape.
    package var stored: Tensor { state.withLock { $0 } }

    /// The current value's shape and dtype (reading them is not an access).
    public var shape: [Int] { stored.shape }
    public var dtype: DType { stored.dtype }

    public func tensor(like other: Tensor?) -> Tensor { value }

    /// Replaces the value (not recorded on any tape).
    /// - Precondition: same shape and dtype as the current value.
    ///
    /// Inside `withErrors` after an error, or with an inert value, nothing is assigned.
    public func assign(_ newValue: some TensorConvertible) {
        let current = stored
        let v = newValue.tensor(like: current)
        guard v.shape == current.shape, v.dtype == current.dtype else {
            let error = TapeError.shape(
                "Variable\(name.map { " '\($0)'" } ?? "").assign: \(Shape.describe(v.shape)) \(v.dtype) "
                    + "for a variable of \(Shape.describe(current.shape)) \(current.dtype)")
            return stop(error, else: ())
        }
        var replacement = v.to(current.device)  // computed, and the old value released, outside the lock
        replacement.evaluate()  // a pending value runs now, not on the next read
        if ErrorScope.isFailing { return }  // the value is inert, or its kernel failed: the old one stays
        if let cause = replacement.handle?.inertCause {
            let error = TapeError.argument(
                "Variable\(name.map { " '\($0)'" } ?? "").assign: the value \(Storage.inertMessage(cause))")
            return stop(error, else: ())
        }
        state.withLock { swap(&$0, &replacement) }
    }

    /// `value -= delta` (an optimizer step); not recorded.
    public func assignSub(_ delta: some TensorConvertible) {
        assign(Recorder.unrecorded { stored - delta.tensor(like: stored) })
    }
    /// `value += delta`; not recorded.
    public func assignAdd(_ delta: some TensorConvertible) {
        assign(Recorder.unrecorded { stored + delta.tensor(like: stored) })
    }

    public var description: String { "Variable(\(name.map { "'\($0)', " } ?? "")\(stored))" }
}
