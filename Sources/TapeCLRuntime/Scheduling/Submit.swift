// The one call an op makes into the runtime for a result the core does not compute inline.

extension DeviceCore {
    /// Runs an op: the one call `Op.execute` makes for a result it does not compute inline. An alias
    /// shares its input's buffer; a transfer copies to the device its parameters name; an elementwise
    /// result that `fusing` lets wait, on a device and at a size where that pays (see ``Fusion``), is
    /// returned pending; anything else is allocated and launched now.
    @_spi(Runtime) public func submit(
        _ name: String, _ forward: Forward, _ inputs: UnsafeBufferPointer<Storage>, shape: [Int], dtype: DType,
        parameters: Parameters, fusing: Fusing
    ) throws -> Storage {
        switch forward {
        case .alias:
            let known = dtype == inputs[0].dtype ? inputs[0].known : nil  // same elements, same order
            return Storage(buffer: try inputs[0].storage(), shape: shape, dtype: dtype, known: known)
        case .transfer: return try transferred(name, inputs[0], to: parameters.transfer.to.core)
        default: break
        }
        let bytes = Shape.count(shape) * dtype.byteSize
        try checkAllocatable(bytes, op: name, shape: shape, dtype: dtype)
        if let pending = Fusion.deferred(forward, inputs, shape: shape, dtype: dtype, core: self, fusing: fusing) {
            return pending
        }
        let out = try allocate(bytes: bytes, op: name, shape: shape, dtype: dtype)
        try withOperands(count: inputs.count, { try inputs[$0].checkedOperand() }) { operands in
            try run(
                Launch(
                    opName: name, forward: forward, inputs: operands, output: out, shape: shape, dtype: dtype,
                    parameters: parameters))
        }
        return Storage(buffer: out, shape: shape, dtype: dtype)
    }
}

/// Whether an op's result may wait to run in a fused kernel (see ``Fusion``).
@_spi(Runtime) public enum Fusing: Sendable {
    case always, never
    /// Up to ``Fusion/smallCount`` elements: sin and cos, whose large float arguments the kernels
    /// redo in a second pass over a large tensor, and in the fused kernel's one step over a small one.
    case smallResults
}

extension DeviceCore {
    /// A copy of `input` (on this device) on `target`, through host memory.
    fileprivate func transferred(_ name: String, _ input: Storage, to target: DeviceCore) throws -> Storage {
        let bytes = input.count * input.dtype.byteSize
        try target.checkAllocatable(bytes, op: name, shape: input.shape, dtype: input.dtype)
        let out = try target.allocate(bytes: bytes, op: name, shape: input.shape, dtype: input.dtype)
        try HostMemory.reserve(bytes, for: "\(name) to \(target.name)")
        var raw = [UInt8](repeating: 0, count: bytes)
        let source = try input.storage()
        try raw.withUnsafeMutableBytes { try read(source, into: $0) }
        try raw.withUnsafeBytes { try target.backend.write($0, to: out) }
        return Storage(buffer: out, shape: input.shape, dtype: input.dtype)
    }
}

extension Forward {
    /// Whether the op only moves or relabels memory (an alias, a copy to another device).
    @_spi(Runtime) public var isLayout: Bool {
        switch self {
        case .alias, .transfer: true
        default: false
        }
    }
}
