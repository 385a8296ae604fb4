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

/// Sets what a stop does before it ends the program (outside `withErrors`): a program with its own
/// way of reporting errors (the `tapecl` command prints one line `error: ...` and exits with status
/// 2) sets it once, at start-up. The handler gets the error and must not return.
///
/// ```swift
/// setStopHandler { error in
///     print("error: \(error)")
///     exit(2)
/// }
/// ```
public func setStopHandler(_ handler: @escaping @Sendable (any Error) -> Never) {
    stopHandler.withLock { $0 = handler }
}

/// What ``fail(_:)`` calls before it stops the program, if set: a program with its own way of
/// reporting errors (the `tapecl` command prints one line `error: ...` and exits with status 2)
/// sets it once, at start-up. It must not return.
@_spi(Runtime) public let stopHandler = Mutex<(@Sendable (any Error) -> Never)?>(nil)

// MARK: - Catching stops (see `withErrors` in TapeCL)

/// What a stop inside `withErrors` does instead of ending the program: where a
/// non-throwing function would call ``fail(_:)``, it calls `stop(error, else: inert)`, which
/// records `error` in the innermost scope (the first one counts) and returns `inert`, a result
/// that does nothing; outside a scope it is ``fail(_:)``.
@_spi(Runtime) public func stop<T>(_ error: any Error, else inert: @autoclosure () -> T) -> T {
    guard let scope = ErrorScope.current else { fail(error) }
    scope.record(error)
    return inert()
}

/// The errors of one `withErrors` call: its first error, kept for the call to throw.
/// Shared with the threads and tasks its body starts (a task-local value); the lock guards it.
@_spi(Runtime) public final class ErrorScope: Sendable {
    /// The innermost scope of the running task or thread.
    @TaskLocal @_spi(Runtime) public static var current: ErrorScope?

    private let first = Mutex<(any Error)?>(nil)
    /// How many open scopes hold an error: while none does, ``isFailing`` needs no task-local read.
    @usableFromInline static let failing = Atomic<Int>(0)

    @_spi(Runtime) public init() {}

    /// The first error recorded, if any.
    @_spi(Runtime) public var firstError: (any Error)? { first.withLock { $0 } }

    /// Keeps `error` unless an earlier one is kept.
    @_spi(Runtime) public func record(_ error: any Error) {
        let isFirst = first.withLock { kept in
            guard kept == nil else { return false }
            kept = error
            return true
        }
        if isFirst { Self.failing.add(1, ordering: .relaxed) }
    }

    /// Ends the scope: it no longer counts as failing.
    @_spi(Runtime) public func close() {
        if firstError != nil { Self.failing.subtract(1, ordering: .relaxed) }
    }

    /// Whether the innermost scope here holds an error, so that an op's result is inert.
    @inlinable @_spi(Runtime) public static var isFailing: Bool {
        failing.load(ordering: .relaxed) > 0 && current?.firstError != nil
    }
}
