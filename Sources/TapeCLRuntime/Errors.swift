import Synchronization

/// Errors thrown by TapeCL. Every message says what went wrong and where (the op, the shapes,
/// the device), so a caller can print `error.description` as it is.
public enum TapeError: Error, CustomStringConvertible, Equatable {
    /// Input shapes that an op cannot combine, e.g. `matmul: [2, 3] and [4, 5]: inner dimensions 3 and 4 differ`.
    case shape(String)
    /// An element type an op does not accept, e.g. `matmul: int32 is not supported`.
    case dtype(String)
    /// Tensors on two devices in one op; move one with `to(_:)`.
    case device(String)
    /// A misuse of a tape, e.g. a second `gradient` on a non-persistent tape.
    case tape(String)
    /// A bad argument (an axis out of range, an unknown device name, a ragged literal).
    case argument(String)
    /// A device failure (an OpenCL call that failed, a kernel that did not build).
    case backend(String)

    public var description: String {
        switch self {
        case .shape(let m), .dtype(let m), .device(let m), .tape(let m), .argument(let m), .backend(let m): m
        }
    }
}

/// Stops the program with `error`'s message: what non-throwing operators do on bad input,
/// as a Swift array does on a bad index. Use the throwing ``Tensor/apply(_:_:axes:keepDims:shape:)``
/// to handle such input instead.
///
/// The message is printed in every build: `preconditionFailure` drops its message in `-O` builds
/// (a user saw only "Illegal instruction"), `fatalError` keeps it.
@_spi(Runtime) public func fail(_ error: any Error) -> Never {
    stopHandler.withLock { $0 }?(error)
    fatalError("TapeCL: \(error)")
}

/// What ``fail(_:)`` calls before it stops the program, if set: a program with its own way of
/// reporting errors (the `tapecl` command prints one line `error: ...` and exits with status 2)
/// sets it once, at start-up. It must not return.
@_spi(Runtime) public let stopHandler = Mutex<(@Sendable (any Error) -> Never)?>(nil)
