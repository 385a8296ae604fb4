import Foundation
import Synchronization

private let nextTensorID = Atomic<UInt64>(1)

/// A tensor's identity on tapes and accumulators: a number from a process-wide counter. Tapes
/// look ids up a few dozen times per recorded op, so the hash is SplitMix64's two-multiply mix of
/// the number and the table's seed, not the general SipHash of `Hasher`.
@_spi(Runtime) public struct TensorID: Hashable, Sendable {
    @_spi(Runtime) public let raw: UInt64
    @inlinable @_spi(Runtime) public init(raw: UInt64) { self.raw = raw }
    @inlinable @_spi(Runtime) public func hash(into hasher: inout Hasher) { hasher.combine(raw) }
    @inlinable @_spi(Runtime) public func _rawHashValue(seed: Int) -> Int {
        Int(truncatingIfNeeded: SplitMix64.mix(raw ^ UInt64(bitPattern: Int64(seed))))
    }
}

/// A tensor's elements and identity; the core's copies of a tensor share one, reshapes share its
/// buffer.
///
/// It holds the elements in one of three ways:
/// - a buffer, computed when the tensor was made;
/// - an expression, for a pending elementwise result (see ``Fusion``): the buffer is computed on
///   first use, and the expression and the inputs it holds go;
/// - the element itself, for a one-element float result on a device that computes those inline
///   (``DeviceCore/computesScalarsInline``: the host). Its buffer is allocated, and counted in the
///   device's memory, only when something asks for one (a reduction, a read, a reshape).
///
/// A float scalar (rank 0) on the process's host device has none: the core keeps its element and
/// identity in the tensor value itself.
@_spi(Runtime) public final class Storage: Sendable {
    @_spi(Runtime) public let id: TensorID
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public let dtype: DType
    @_spi(Runtime) public let core: DeviceCore
    /// The buffer, for a tensor computed when it was made.
    private let eager: Buffer?
    /// An inline element's bits (a float32's in the low 32), valid when `isInline`.
    private let element: UInt64
    @_spi(Runtime) public let isInline: Bool
    /// Whether the tensor was made pending: `state` holds its expression until it is computed.
    @_spi(Runtime) public let isDeferred: Bool
    /// A pending tensor's expression, then its buffer; an inline one's buffer once asked for.
    let state: Mutex<Deferred>
    /// Whether a tape keeps this pending value: a fused kernel that computes it on the way writes it.
    private let kept = Atomic<Bool>(false)
    /// What is known without a read of an integer tensor made from host values (see ``Known``).
    @_spi(Runtime) public let known: Known?
    /// For an inert tensor, the result of an op inside `withErrors` after its first error: that
    /// error's message. It has no elements; its buffer is a stop naming the error.
    @_spi(Runtime) public let inertCause: String?
    /// Whether this is an inert tensor (see ``init(inert:dtype:core:cause:)``).
    @_spi(Runtime) public let isInert: Bool

    /// The least and largest element of an integer tensor made from host values (ids and labels are
    /// checked against it), and, for an int32 one of at most ``Known/idLimit`` elements, the
    /// elements themselves (a gather's gradient sorts its ids by them): no wait on the device.
    @_spi(Runtime) public struct Known: Sendable {
        @_spi(Runtime) public let range: ClosedRange<Int64>
        @_spi(Runtime) public let ids: [Int32]?
        @_spi(Runtime) public init(range: ClosedRange<Int64>, ids: [Int32]?) {
            self.range = range
            self.ids = ids
        }
        /// The most int32 elements kept on the host (256 KiB).
        @_spi(Runtime) public static let idLimit = 1 << 16
    }

    enum Deferred {
        case none
        case pending(PendingOp)
        case computed(Buffer)
    }

    @_spi(Runtime) public init(buffer: Buffer, shape: [Int], dtype: DType, known: Known? = nil) {
        id = Self.newID()
        self.known = known
        (inertCause, isInert) = (nil, false)
        (self.shape, self.dtype, core, eager) = (shape, dtype, buffer.core, buffer)
        (element, isInline, isDeferred) = (0, false, false)
        state = Mutex(.none)
    }

    @_spi(Runtime) public init(pending expression: PendingOp, shape: [Int], dtype: DType, core: DeviceCore) {
        id = Self.newID()
        (known, inertCause, isInert) = (nil, nil, false)
        (self.shape, self.dtype, self.core, eager) = (shape, dtype, core, nil)
        (element, isInline, isDeferred) = (0, false, true)
        state = Mutex(.pending(expression))
    }

    /// A one-element float tensor holding `element` (bits as ``InlineElement`` gives them).
    @_spi(Runtime) public init(element: UInt64, shape: [Int], dtype: DType, core: DeviceCore) {
        id = Self.newID()
        (known, inertCause, isInert) = (nil, nil, false)
        (self.shape, self.dtype, self.core, eager) = (shape, dtype, core, nil)
        (self.element, isInline, isDeferred) = (element, true, false)
        state = Mutex(.none)
    }

    /// An inert tensor (see `withErrors`): no elements, no memory, `cause` the scope's first error.
    @_spi(Runtime) public init(inert shape: [Int], dtype: DType, core: DeviceCore, cause: String) {
        id = Self.newID()
        (known, inertCause, isInert) = (nil, cause, true)
        (self.shape, self.dtype, self.core, eager) = (shape, dtype, core, nil)
        (element, isInline, isDeferred) = (0, false, false)
        state = Mutex(.none)
    }

    /// The elements' memory; a pending tensor is computed now, by one fused kernel.
    @_spi(Runtime) public var buffer: Buffer {
        if let eager { return eager }
        do { return try storage() } catch { fail(error) }
    }

    /// ``buffer``, or the error computing it (a pending tensor's kernel, an inert tensor's cause).
    @_spi(Runtime) public func storage() throws -> Buffer {
        if let eager { return eager }
        if let inertCause { throw TapeError.argument("this tensor \(Self.inertMessage(inertCause))") }
        return try isDeferred ? computed() : materialized()
    }

    /// What using an inert tensor outside its `withErrors` says, after "this tensor" or "an input".
    @_spi(Runtime) public static func inertMessage(_ cause: String) -> String {
        "is the result of an op after an error inside withErrors and has no elements (the error: \(cause))"
    }

    /// An inline element's buffer, made the first time it is asked for.
    private func materialized() throws -> Buffer {
        try state.withLock { s in
            if case .computed(let made) = s { return made }
            let buffer = try Self.upload(element, dtype, to: core)
            s = .computed(buffer)
            return buffer
        }
    }

    /// A new tensor identity.
    @_spi(Runtime) public static func newID() -> TensorID {
        TensorID(raw: nextTensorID.add(1, ordering: .relaxed).newValue)
    }

    /// A one-element buffer on `core` holding an element's bits (a float32's in the low 32).
    @_spi(Runtime) public static func upload(_ element: UInt64, _ dtype: DType, to core: DeviceCore) throws -> Buffer {
        let buffer = try core.allocate(bytes: dtype.byteSize)
        try withUnsafeBytes(of: element.littleEndian) { bits in
            try core.backend.write(UnsafeRawBufferPointer(rebasing: bits[..<dtype.byteSize]), to: buffer)
        }
        return buffer
    }

    /// The bits of the one element in `bytes` (4 or 8 of them, host byte order), as ``upload`` takes them.
    @_spi(Runtime) public static func bits(of bytes: UnsafeRawBufferPointer) -> UInt64 {
        bytes.count == 4 ? UInt64(bytes.loadUnaligned(as: UInt32.self)) : bytes.loadUnaligned(as: UInt64.self)
    }

    /// The bits of `value` converted to the float `dtype`, as ``upload`` takes them (the conversion
    /// `withHostBytes` makes, without its array).
    @_spi(Runtime) public static func bits(of value: Double, as dtype: DType) -> UInt64 {
        dtype == .float32 ? UInt64(Float(value).bitPattern) : value.bitPattern
    }

    /// The expression, while the tensor is pending.
    @_spi(Runtime) public var expression: PendingOp? {
        guard isDeferred else { return nil }
        return state.withLock { if case .pending(let e) = $0 { e } else { nil } }
    }

    /// A tape keeps the value: a fused kernel computing it on the way to another result writes it.
    @_spi(Runtime) public func keep() { kept.store(true, ordering: .relaxed) }
    @_spi(Runtime) public var isKept: Bool { kept.load(ordering: .relaxed) }

    /// Takes `buffer`, written by a kernel computing another result, unless already computed.
    @_spi(Runtime) public func fill(_ buffer: Buffer) {
        state.withLock { s in
            if case .pending = s { s = .computed(buffer) }
        }
    }

    /// The single element's bits, where the caller can read them without a launch: kept inline,
    /// or in a computed one-element buffer of a device whose memory is host memory; else nil.
    @_spi(Runtime) public var hostElement: UInt64? {
        if isInline { return element }
        guard let eager, core.computesScalarsInline, dtype.isFloatingPoint, Shape.count(shape) == 1 else {
            return nil
        }
        return dtype == .float32 ? UInt64(eager.handle.load(as: UInt32.self)) : eager.handle.load(as: UInt64.self)
    }
}
