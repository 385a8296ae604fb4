import Foundation
@_spi(Runtime) import TapeCLRuntime

// Applying an op: the checks, then an inline element (the host's one-element results) or one call into
// the runtime, which aliases, copies, defers or launches.

/// Set `TAPECL_CROSSCHECK=1` to run every device op on the host too and report the first disagreement.
let crossCheckEnabled = ProcessInfo.processInfo.environment["TAPECL_CROSSCHECK"] == "1"

extension Op {
    /// Runs the op on its inputs' device and records it on every active tape and accumulator
    /// that watches an input.
    /// - Throws: `TapeError` naming the op for a bad shape, dtype or device mix.
    package func apply(_ inputs: [Tensor], _ parameters: Parameters = .none) throws -> Tensor {
        try Inputs.with(inputs) { try apply($0, parameters) }
    }

    /// ``apply(_:_:)-([Tensor],_)`` on borrowed inputs: how the operators call an op (no array per op).
    package func apply(_ inputs: Inputs, _ parameters: Parameters = .none) throws -> Tensor {
        if ErrorScope.isFailing { return inertResult(inputs, parameters) }  // see `withErrors`
        let output = try execute(inputs, parameters)
        if differentiable && output.dtype.isFloatingPoint {
            Recorder.record(self, inputs, output, parameters)
        }
        return output
    }

    /// Whether the op takes `count` inputs (its arity, or one or more for a variadic op).
    func takes(_ count: Int) -> Bool { arity == Op.variadic ? count > 0 : count == arity }

    /// The forward computation alone (no recording).
    package func execute(_ inputs: [Tensor], _ parameters: Parameters) throws -> Tensor {
        try Inputs.with(inputs) { try execute($0, parameters) }
    }

    /// The element type of the op's output for inputs of `dtype`.
    func outputDType(_ parameters: Parameters, _ dtype: DType) -> DType {
        if case .conversion(let c) = parameters { c.to } else { result ?? dtype }
    }

    package func execute(_ inputs: Inputs, _ parameters: Parameters) throws -> Tensor {
        let inDType = try check(inputs, parameters)
        let outShape = try shape(InputShapes(inputs: inputs), parameters)
        let dtype = outputDType(parameters, inDType)
        let bytes = try Shape.checkedBytes(outShape, dtype, op: name)
        // A one-element elementwise result on a device that computes those inline (the host) is computed
        // here: no memory until asked for, no launch, no fusion, and for a scalar no reference to the device.
        if bytes == dtype.byteSize && dtype == inDType && inputs[0].computesScalarsInline,
            let element = inlineElement(inputs)
        {
            if outShape.isEmpty && inputs[0].isOnProcessHost { return Tensor(hostScalar: element, dtype: dtype) }
            return Tensor(handle: Storage(element: element, shape: outShape, dtype: dtype, core: inputs[0].core))
        }
        return try submitted(inputs, parameters, shape: outShape, dtype: dtype)
    }

    /// Checks the inputs' count, devices, dtypes and the parameters' family; returns the inputs' dtype.
    @inline(__always)
    private func check(_ inputs: Inputs, _ parameters: Parameters) throws -> DType {
        guard takes(inputs.count) else {
            throw TapeError.argument(
                "\(name): expects \(arity == Op.variadic ? "one or more" : "\(arity)") inputs, got \(inputs.count)")
        }
        guard parameters.kind == self.parameters else {
            throw TapeError.argument("\(name): takes \(self.parameters) parameters, given \(parameters.kind)")
        }
        let isTransfer = if case .transfer = forward { true } else { false }
        for i in inputs.indices {
            let input = inputs[i]
            if let cause = input.handle?.inertCause {  // from a scope of `withErrors` that has ended
                throw TapeError.argument("\(name): an input \(Storage.inertMessage(cause))")
            }
            if !isTransfer && !input.isOnDevice(of: inputs[0]) {
                throw TapeError.device(
                    "\(name): inputs on \(inputs[0].device) and \(input.device); move one with to(_:)")
            }
        }
        let inDType = inputs[0].dtype
        for i in 1..<Swift.max(1, inputs.count - auxiliary) where inputs[i].dtype != inDType {  // no slice per op
            throw TapeError.dtype(
                "\(name): dtypes \(inDType) and \(inputs[i].dtype) differ; convert one with cast(to:)")
        }
        if floatOnly && !inDType.isFloatingPoint {
            throw TapeError.dtype("\(name): \(inDType) is not supported (float32 and float64 are)")
        }
        return inDType
    }

    /// The op's result from the runtime (``DeviceCore/submit``): an alias, a copy on another device, a
    /// pending result to run fused (see ``Fusion``), or a launch now.
    @inline(__always)
    private func submitted(
        _ inputs: Inputs, _ parameters: Parameters, shape: [Int], dtype: DType
    ) throws -> Tensor {
        let core = inputs[0].core
        let fusing = crossCheckEnabled ? .never : fusable  // a cross-checked op runs on its own
        let storage = try withUnsafeTemporaryAllocation(of: Storage.self, capacity: inputs.count) { memory in
            for i in inputs.indices { (memory.baseAddress! + i).initialize(to: inputs[i].storageHandle) }
            defer { memory.baseAddress!.deinitialize(count: inputs.count) }
            return try core.submit(
                name, forward, UnsafeBufferPointer(memory), shape: shape, dtype: dtype, parameters: parameters,
                fusing: fusing)
        }
        let result = Tensor(handle: storage)
        if crossCheckEnabled && core !== Device.host.core && !forward.isLayout {
            CrossCheck.announce
            try CrossCheck.compare(self, inputs, parameters, result)
        }
        return result
    }

    /// A one-element float result computed here, from inputs whose elements the host can read
    /// (see ``Storage``); nil for other ops and inputs.
    private func inlineElement(_ inputs: Inputs) -> UInt64? {
        switch forward {
        case .unary(_, let f):
            guard let x = inputs[0].hostElement else { return nil }
            return InlineElement.unary(f, x, inputs[0].dtype)
        case .binary(_, let f):
            guard let a = inputs[0].hostElement, let b = inputs[1].hostElement else { return nil }
            return InlineElement.binary(f, a, b, inputs[0].dtype)
        default: return nil
        }
    }

    /// Applies the op, stopping the program on bad input (operators use this; see ``fail(_:)``).
    package func callAsFunction(_ inputs: Tensor..., parameters: Parameters = .none) -> Tensor {
        Tensor.stopping { try apply(inputs, parameters) }
    }
    /// Applies a unary op (see ``callAsFunction(_:parameters:)-(Tensor...,_)``).
    package func callAsFunction(_ x: Tensor, parameters: Parameters = .none) -> Tensor {
        Tensor.stopping { try Inputs.with(x) { try apply($0, parameters) } }
    }
    /// Applies a binary op (see ``callAsFunction(_:parameters:)-(Tensor...,_)``).
    package func callAsFunction(_ a: Tensor, _ b: Tensor, parameters: Parameters = .none) -> Tensor {
        Tensor.stopping { try Inputs.with(a, b) { try apply($0, parameters) } }
    }
}
