@_spi(Runtime) import TapeCLRuntime

/// Runs `body`, turning a stop of any TapeCL op, layer, loss or optimizer inside it into a thrown
/// error: the first one, as the op or layer worded it (what it is, the shapes, the devices).
///
/// After that first error the rest of `body` still runs, but its results are *inert*: an op with
/// the scope in error, or with an inert input, launches nothing, records nothing on any tape and
/// returns an inert tensor (its shape computed where the op's shape rule allows, else `[]`); an
/// inert tensor reads as zeros; a variable's assignment and an optimizer's step change nothing (a
/// step applies to every variable or to none). Tensors made before the error keep their values.
/// `withErrors` then throws the first error. An error `body` throws itself is thrown as it is,
/// unless a stop came first.
///
/// Outside `withErrors` a stop prints its message and ends the program, as before. Scopes nest:
/// an inner scope catches its own errors. Using an inert tensor after its scope has ended is a
/// stop saying where it came from.
///
/// ```swift
/// do {
///     let logits = try withErrors { model(x) }
///     print(logits)
/// } catch {
///     print("the model did not run: \(error)")   // e.g. Dense(128→10): the input has 1024 features …
/// }
/// ```
public func withErrors<R>(_ body: () throws -> R) throws -> R {
    let scope = ErrorScope()
    defer { scope.close() }
    let result: R
    do {
        result = try ErrorScope.$current.withValue(scope) { try body() }
    } catch {
        throw scope.firstError ?? error
    }
    if let first = scope.firstError { throw first }
    return result
}

// MARK: - Inert tensors

// What ops give inside `withErrors` after its first error. An inert tensor has a shape and dtype
// but no elements and no memory; ops on it launch nothing and record nothing. Outside the scope
// that made it, using one is a stop naming the error.

extension Tensor {
    /// An inert tensor of `shape` and `dtype` on `core` (the host's unless given), its cause the
    /// innermost scope's first error.
    package static func inert(shape: [Int] = [], dtype: DType = .float32, on core: DeviceCore? = nil) -> Tensor {
        let cause = ErrorScope.current?.firstError.map { "\($0)" } ?? "an error inside withErrors"
        let handle = Storage(inert: shape, dtype: dtype, core: core ?? Device.host.core, cause: cause)
        return Tensor(handle: handle)
    }

    /// An inert tensor like `x`: its shape, dtype and device.
    package static func inert(like x: Tensor) -> Tensor { inert(shape: x.shape, dtype: x.dtype, on: x.core) }

    /// Whether this is the inert result of an op after an error inside `withErrors`.
    package var isInert: Bool { handle?.isInert ?? false }

    /// `body`'s tensor; on an error, a stop (see `fail`), which inside `withErrors` records the
    /// error and gives an inert tensor of `shape` instead.
    package static func stopping(shape: [Int] = [], _ body: () throws -> Tensor) -> Tensor {
        do { return try body() } catch { return stop(error, else: .inert(shape: shape)) }
    }

    /// The elements' memory, or the error computing it (a pending tensor's kernel, an inert tensor).
    package func storage() throws -> Buffer {
        if let handle { return try handle.storage() }
        return try Storage.upload(hostElement ?? 0, dtype, to: Tensor.hostCore)
    }
}

extension Op {
    /// An op's result inside `withErrors` after its first error: inert, its shape from the op's shape
    /// rule where the inputs allow one, else `[]`. Nothing is launched or recorded.
    func inertResult(_ inputs: Inputs, _ parameters: Parameters) -> Tensor {
        let shape = takes(inputs.count) ? (try? self.shape(InputShapes(inputs: inputs), parameters)) ?? [] : []
        let dtype = outputDType(parameters, inputs.isEmpty ? .float32 : inputs[0].dtype)
        return Tensor.inert(shape: shape, dtype: dtype, on: inputs.isEmpty ? nil : inputs[0].core)
    }
}

extension Tensor {
    /// For a layer or loss that checks its inputs before its ops: nil when no input is inert; else
    /// an inert result inside the scope in error, or (an inert input from a scope that has ended) a
    /// stop naming `name` and the scope's error.
    package static func inertResult(of name: String, _ inputs: Tensor...) -> Tensor? {
        guard let cause = inputs.lazy.compactMap({ $0.handle?.inertCause }).first else { return nil }
        if ErrorScope.isFailing { return .inert(dtype: inputs[0].dtype) }
        let error = TapeError.argument("\(name): an input \(Storage.inertMessage(cause))")
        return stop(error, else: .inert(dtype: inputs[0].dtype))
    }
}
