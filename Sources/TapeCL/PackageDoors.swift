@_spi(Runtime) import TapeCLRuntime

// What the layers above TapeCL (TapeCLNN, TapeCLData, TapeCLDistributed) use of it beyond the
// public API: `package` declarations, so that those layers import no runtime SPI (`make lint`
// checks that they do not).

/// A stop of a layer, loss, optimizer or data set built on TapeCL: inside `withErrors`, records
/// `error` and gives `inert`; elsewhere, ends the program with the error's message (see `fail`).
package func stop<T>(_ error: any Error, else inert: @autoclosure () -> T) -> T {
    TapeCLRuntime.stop(error, else: inert())
}

/// Whether the innermost `withErrors` here holds an error: what follows is inert.
package var insideFailedScope: Bool { ErrorScope.isFailing }

/// FNV-1a of `text`'s UTF-8, 64 bits: the same on every run and machine (what processes compare
/// to agree on their settings).
package func stableHash(_ text: String) -> UInt64 { ProgramCache.fnv1a(text) }

/// What using an inert tensor outside its `withErrors` says, after "this tensor" or "an input".
package func inertMessage(_ cause: String) -> String { Storage.inertMessage(cause) }

extension Tensor {
    /// For an inert tensor (the result of an op after an error inside `withErrors`), that error.
    package var inertCause: String? { handle?.inertCause }
}
