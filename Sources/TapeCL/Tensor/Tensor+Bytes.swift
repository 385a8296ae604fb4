@_spi(Runtime) import TapeCLRuntime

/// Raw element bytes in and out: what file formats (safetensors) and communication (MPI) need,
/// without a Swift array in between.
extension Tensor {
    /// A tensor of `shape` and `dtype` whose row-major elements are `bytes`, in the host's byte
    /// order (little-endian on every platform TapeCL runs on), copied to `device` (else the current one).
    ///
    /// ```swift
    /// let t = try [Float](arrayLiteral: 1, 2, 3).withUnsafeBytes {
    ///     try Tensor(shape: [3], dtype: .float32, bytes: $0)
    /// }
    /// ```
    /// - Throws: `TapeError.shape` when `bytes.count` is not `shape`'s element count times the dtype's size.
    public init(shape: [Int], dtype: DType, bytes: UnsafeRawBufferPointer, on device: Device? = nil) throws {
        let device = device ?? .current
        let count = try Shape.checkedBytes(shape, dtype, op: "Tensor(bytes:)")
        guard bytes.count == count else {
            throw TapeError.shape(
                "Tensor(bytes:): \(bytes.count) bytes for \(Shape.describe(shape)) \(dtype), which takes \(count)")
        }
        try device.core.checkAllocatable(count, op: "Tensor(bytes:)", shape: shape, dtype: dtype)
        let buffer = try device.core.allocate(bytes: count, op: "Tensor(bytes:)", shape: shape, dtype: dtype)
        try device.core.backend.write(bytes, to: buffer)
        self.init(handle: Storage(buffer: buffer, shape: shape, dtype: dtype))
    }

    /// Copies the row-major elements' bytes (``byteCount`` of them, host byte order) into
    /// `destination`, waiting for queued work: one read from the device.
    /// - Throws: `TapeError.shape` when `destination.count` differs from ``byteCount``.
    public func copyBytes(into destination: UnsafeMutableRawBufferPointer) throws {
        guard destination.count == byteCount else {
            throw TapeError.shape(
                "copyBytes: a buffer of \(destination.count) bytes for \(Shape.describe(shape)) \(dtype) "
                    + "(\(byteCount) bytes)")
        }
        try buffer.core.read(buffer, into: destination)
    }
}

extension Tensor {
    /// `items`, one per element in row-major order (as ``scalars`` gives them), grouped by this
    /// tensor's shape into nested lists made by `list`: what `description` and `tapecl --json`
    /// print. A scalar is its one item (`empty` when there is none).
    ///
    /// ```swift
    /// let m = Tensor([[1, 2], [3, 4]])
    /// m.nested(m.scalars.map { "\($0)" }, empty: "") { "[" + $0.joined(separator: ", ") + "]" }
    /// // "[[1.0, 2.0], [3.0, 4.0]]"
    /// ```
    /// - Precondition: `items.count == count` (else a stop naming both).
    public func nested<T>(_ items: [T], empty: T, list: ([T]) -> T) -> T {
        guard items.count == count else {
            let message =
                "nested: \(items.count) items for a tensor of shape \(Shape.describe(shape)) (\(count) elements)"
            return stop(TapeError.shape(message), else: empty)
        }
        return Shape.nested(items[...], shape[...], empty: empty, list: list)
    }
}
