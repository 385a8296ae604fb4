import Foundation
import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// An immutable n-dimensional array on a `Device`.
///
/// - Element types: float32 (the default for every literal), float64, int32, int8.
/// - Arithmetic follows NumPy broadcasting; a bare number next to a tensor takes its dtype and device.
/// - Ops enqueue work on the device and return at once; reading values (``scalars``, ``scalar``)
///   is the only wait.
///
/// ```swift
/// let a = Tensor([[1, 2], [3, 4]])            // float32, shape [2, 2]
/// let b = 2 * a + Tensor([10, 20])            // broadcast over rows
/// print(b.scalars)                            // [12.0, 24.0, 16.0, 28.0]
/// let c = Tensor(3.0, dtype: .float64)
/// ```
public struct Tensor: Sendable {
    /// The handle: an object shared by the copies. Nil for a float scalar (rank 0) on the process's
    /// host device, whose identity and element the value keeps itself (`element`): a scalar chain on
    /// the host (W1) then allocates no object per op, and copying such a tensor retains nothing.
    /// (Two fields rather than an enum: a copy is then one retain, which the optimiser can pair.)
    package let handle: Storage?
    private let element: Element

    /// A scalar kept in the value; meaningless when the tensor has a handle.
    private struct Element {
        let id: TensorID
        let bits: UInt64
        let dtype: DType
        static var none: Element { Element(id: TensorID(raw: 0), bits: 0, dtype: .float32) }
    }

    package init(handle: Storage) { (self.handle, self.element) = (handle, .none) }

    /// The storage the runtime takes: the handle, or for a scalar kept in the value an inline one.
    var storageHandle: Storage {
        handle ?? Storage(element: element.bits, shape: [], dtype: element.dtype, core: Tensor.hostCore)
    }

    /// A float scalar on the process's host device, kept in the value: its bits (a float32's in the low 32).
    init(hostScalar bits: UInt64, dtype: DType) {
        (handle, element) = (nil, Element(id: Storage.newID(), bits: bits, dtype: dtype))
    }

    /// The process's host device, whose scalars are kept in the value: it lives as long as the process.
    /// Only read where a tensor exists, so after the device registry has set it.
    static var hostCore: DeviceCore { processHostCore!.takeUnretainedValue() }
    /// Whether `core` is ``hostCore`` (compared by address: no reference counting).
    static func isProcessHost(_ core: DeviceCore) -> Bool {
        processHostCore?.toOpaque() == Unmanaged.passUnretained(core).toOpaque()
    }
    /// Whether the tensor is on `core` (no reference counting).
    func isOn(_ core: DeviceCore) -> Bool {
        if let handle { return handle.core === core }
        return Tensor.isProcessHost(core)
    }
    /// Whether the tensor is on the process's host device (no reference counting).
    var isOnProcessHost: Bool {
        if let handle { return Tensor.isProcessHost(handle.core) }
        return true
    }
    /// Whether the tensor's device computes one-element results inline
    /// (``DeviceCore/computesScalarsInline``), as the host does for a scalar kept in the value.
    var computesScalarsInline: Bool {
        if let handle { return handle.core.computesScalarsInline }
        return true
    }
    /// Whether the tensor is on `other`'s device (no reference counting).
    func isOnDevice(of other: Tensor) -> Bool {
        if let handle { return other.isOn(handle.core) }
        return other.handle.map { Tensor.isProcessHost($0.core) } ?? true
    }

    /// The dimensions, outermost first; `[]` for a scalar.
    public var shape: [Int] { handle?.shape ?? [] }
    /// The element type.
    public var dtype: DType { handle?.dtype ?? element.dtype }
    /// Where the elements live and ops on this tensor run; move with ``to(_:)``.
    public var device: Device { Device(core: core) }
    package var core: DeviceCore { handle?.core ?? Tensor.hostCore }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Number of elements.
    public var count: Int { handle.map { Shape.count($0.shape) } ?? 1 }
    /// Bytes of this tensor's elements.
    public var byteCount: Int { count * dtype.byteSize }
    package var id: TensorID { handle?.id ?? element.id }
    /// The elements' memory. A scalar kept in the value gets a new one-element buffer each time.
    package var buffer: Buffer {
        do { return try storage() } catch { fail(error) }
    }
    /// The single element's bits where the caller can read them without a launch (see
    /// ``Storage/hostElement``); else nil.
    package var hostElement: UInt64? {
        if let handle { return handle.hostElement }
        return element.bits
    }
    /// Whether the element is kept in the value or the handle, with no buffer until one is asked for.
    package var isInline: Bool { handle?.isInline ?? true }
    /// Whether the elements wait to be computed by a fused kernel (see ``Fusion``).
    package var isPending: Bool { handle?.isPending ?? false }

    // MARK: Creation

    /// A tensor of `shape` from host values converted to `dtype` (float32 unless given; int32 and
    /// int8 arrays keep their type), on `device` (else the current device).
    /// - Precondition: `scalars.count` equals the product of `shape`.
    public init<S: TensorScalar>(shape: [Int], scalars: [S], dtype: DType? = nil, on device: Device? = nil) {
        do {
            self = try Tensor.make(
                shape: shape, scalars: scalars, dtype: dtype ?? S.defaultDType, on: device ?? .current)
        } catch {
            self = stop(error, else: .inert(shape: shape.allSatisfy { $0 >= 0 } ? shape : [], dtype: dtype ?? .float32))
        }
    }

    /// A 1-D tensor of `scalars` (float32 unless `dtype` says otherwise).
    public init<S: TensorScalar>(_ scalars: [S], dtype: DType? = nil, on device: Device? = nil) {
        self.init(shape: [scalars.count], scalars: scalars, dtype: dtype, on: device)
    }

    /// A 2-D tensor from rows of equal length.
    public init<S: TensorScalar>(_ rows: [[S]], dtype: DType? = nil, on device: Device? = nil) {
        let width = rows.first?.count ?? 0
        guard rows.allSatisfy({ $0.count == width }) else {
            let error = TapeError.argument("Tensor: ragged rows (lengths \(rows.map(\.count)))")
            self = stop(error, else: .inert(shape: [rows.count, width], dtype: dtype ?? .float32))
            return
        }
        self.init(shape: [rows.count, width], scalars: rows.flatMap { $0 }, dtype: dtype, on: device)
    }

    /// A scalar of the given dtype: `Tensor(3.0, dtype: .float64)`.
    public init<S: TensorScalar>(_ value: S, dtype: DType? = nil, on device: Device? = nil) {
        self.init(shape: [], scalars: [value], dtype: dtype, on: device)
    }

    /// A tensor of `shape` filled with `value`.
    /// The elements are written on the device (no host array of the tensor's size).
    public static func full(shape: [Int], value: Double, dtype: DType = .float32, on device: Device? = nil) -> Tensor {
        do { return try filled(shape: shape, value: value, dtype: dtype, on: device ?? .current) } catch {
            return stop(error, else: .inert(shape: shape.allSatisfy { $0 >= 0 } ? shape : [], dtype: dtype))
        }
    }

    package static func filled(shape: [Int], value: Double, dtype: DType, on device: Device) throws -> Tensor {
        let bytes = try Shape.checkedBytes(shape, dtype, op: "Tensor.full")
        try device.core.checkAllocatable(bytes, op: "Tensor.full", shape: shape, dtype: dtype)
        if shape.isEmpty && dtype.isFloatingPoint && Tensor.isProcessHost(device.core) {
            return Tensor(hostScalar: Storage.bits(of: value, as: dtype), dtype: dtype)
        }
        let buffer = try device.core.allocate(bytes: bytes, op: "Tensor.full", shape: shape, dtype: dtype)
        let element = withHostBytes([value], as: dtype) { Array($0) }
        try device.core.backend.fill(buffer, with: element, count: Shape.count(shape))
        return Tensor(handle: Storage(buffer: buffer, shape: shape, dtype: dtype))
    }
    /// A tensor of `shape` filled with 0 (float32 unless `dtype` says otherwise).
    public static func zeros(shape: [Int], dtype: DType = .float32, on device: Device? = nil) -> Tensor {
        full(shape: shape, value: 0, dtype: dtype, on: device)
    }
    /// Zeros of `t`'s shape and dtype on `t`'s device (TensorFlow's `zeros_like`).
    package static func zeros(like t: Tensor) -> Tensor { zeros(shape: t.shape, dtype: t.dtype, on: t.device) }
    /// A tensor of `shape` filled with 1 (float32 unless `dtype` says otherwise).
    public static func ones(shape: [Int], dtype: DType = .float32, on device: Device? = nil) -> Tensor {
        full(shape: shape, value: 1, dtype: dtype, on: device)
    }

    /// Uniform samples in `[lowerBound, upperBound)` from a seeded generator (SplitMix64): the same
    /// seed gives the same tensor on every device and run.
    ///
    /// ```swift
    /// let w = Tensor.randomUniform(shape: [3, 4], lowerBound: -0.1, upperBound: 0.1, seed: 7)
    /// ```
    public static func randomUniform(
        shape: [Int], lowerBound: Double = 0, upperBound: Double = 1, seed: UInt64 = 0,
        dtype: DType = .float32, on device: Device? = nil
    ) -> Tensor {
        guard reserveSamples(shape, "Tensor.randomUniform") else { return .inert(dtype: dtype) }
        var rng = SplitMix64(seed: seed)
        let values = (0..<Shape.count(shape)).map { _ in lowerBound + (upperBound - lowerBound) * rng.nextUnit() }
        return Tensor(shape: shape, scalars: values, dtype: dtype, on: device)
    }

    /// Normal(mean, stddev) samples from a seeded generator (SplitMix64 and Box–Muller): the
    /// same seed gives the same tensor on every device and run.
    public static func randomNormal(
        shape: [Int], mean: Double = 0, stddev: Double = 1, seed: UInt64 = 0,
        dtype: DType = .float32, on device: Device? = nil
    ) -> Tensor {
        guard reserveSamples(shape, "Tensor.randomNormal") else { return .inert(dtype: dtype) }
        var rng = SplitMix64(seed: seed)
        let n = Shape.count(shape)
        var values = [Double](repeating: 0, count: n)
        var i = 0
        while i < n {
            let u1 = Swift.max(rng.nextUnit(), Double.leastNormalMagnitude)
            let u2 = rng.nextUnit()
            let r = (-2 * Foundation.log(u1)).squareRoot()
            values[i] = mean + stddev * r * Foundation.cos(2 * .pi * u2)
            if i + 1 < n { values[i + 1] = mean + stddev * r * Foundation.sin(2 * .pi * u2) }
            i += 2
        }
        return Tensor(shape: shape, scalars: values, dtype: dtype, on: device)
    }

    /// The least and largest element of an int32 or int8 tensor made from host values, known
    /// without reading the device (nil for other tensors): what ids and labels are checked against.
    package var knownRange: ClosedRange<Int64>? { handle?.known?.range }
    /// The elements of an int32 tensor of at most 65,536 made from host values (a reshape keeps
    /// them), known without reading the device; nil for other tensors.
    package var knownIDs: [Int32]? { handle?.known?.ids }

    /// Whether the host can hold the samples of `shape` (float64 values, then the converted copy)
    /// that the random initialisers make before the tensor; if not, a stop with a one-line error
    /// (inside `withErrors`, false).
    static func reserveSamples(_ shape: [Int], _ op: String) -> Bool {
        do {
            let bytes = try Shape.checkedBytes(shape, .float64, op: op)
            try HostMemory.reserve(bytes + bytes / 2, for: "\(op): \(Shape.describe(shape)) samples")
            return true
        } catch { return stop(error, else: false) }
    }

    package static func make<S: TensorScalar>(
        shape: [Int], scalars: [S], dtype: DType, on device: Device
    ) throws -> Tensor {
        let bytes = try Shape.checkedBytes(shape, dtype, op: "Tensor")
        try device.core.checkAllocatable(bytes, op: "Tensor", shape: shape, dtype: dtype)
        guard scalars.count == Shape.count(shape) else {
            throw TapeError.shape(
                "Tensor: \(scalars.count) scalars do not fill shape \(Shape.describe(shape)) "
                    + "(\(Shape.count(shape)) elements)"
            )
        }
        if shape.isEmpty && dtype.isFloatingPoint && Tensor.isProcessHost(device.core) {
            return Tensor(hostScalar: withHostBytes(scalars, as: dtype) { Storage.bits(of: $0) }, dtype: dtype)
        }
        let buffer = try device.core.allocate(bytes: bytes, op: "Tensor", shape: shape, dtype: dtype)
        let known = try withHostBytes(scalars, as: dtype) { raw -> Storage.Known? in
            try device.core.backend.write(raw, to: buffer)
            guard let range = integerRange(raw, dtype) else { return nil }
            let keep = dtype == .int32 && scalars.count <= Storage.Known.idLimit
            return Storage.Known(range: range, ids: keep ? Array(raw.bindMemory(to: Int32.self)) : nil)
        }
        return Tensor(handle: Storage(buffer: buffer, shape: shape, dtype: dtype, known: known))
    }

    /// Computes the elements now if they wait in a fused chain (see the README's section on
    /// fusion), so that a value kept across steps (an optimizer's moments) holds its own memory
    /// instead of the expression and the inputs it was made from, and is not computed again inside
    /// every later chain that reads it. A computed tensor, or a one-element one kept in its handle,
    /// is left as it is. Enqueues work; does not wait for it. (A user keeps such a value in a
    /// `Variable`, whose `assign` calls this.)
    ///
    /// ```swift
    /// let m = 0.9 * m0 + 0.1 * g
    /// m.evaluate()   // m0 and g can go
    /// ```
    package func evaluate() { handle?.evaluate() }

    // MARK: Reading back (the only waits)

    /// The elements in row-major order, converted to `Float`. Waits for queued work.
    public var scalars: [Float] { scalars(as: Float.self) }

    /// The single element of a one-element tensor, as `Float`.
    /// - Precondition: `count == 1`.
    public var scalar: Float {
        guard count == 1 else {
            let message = "scalar: a tensor of shape \(Shape.describe(shape)) has \(count) elements; use scalars"
            return stop(TapeError.shape(message), else: 0)
        }
        return scalars.first ?? 0  // none: a read that failed inside `withErrors`
    }

    /// The elements converted to `T` (`Double` keeps float64 exact).
    public func scalars<T: TensorScalar>(as: T.Type) -> [T] {
        do { return try readScalars(as: T.self) } catch {
            return stop(error, else: [T](repeating: .converting(0), count: isInert ? count : 0))
        }
    }

    package func readScalars<T: TensorScalar>(as: T.Type) throws -> [T] {
        if handle == nil {
            if element.dtype == .float32 {
                let value = Float(bitPattern: UInt32(truncatingIfNeeded: element.bits))
                return [T.self == Float.self ? value as! T : T.converting(Double(value))]
            }
            return [T.converting(Double(bitPattern: element.bits))]
        }
        let source = try storage()
        let sameType = (T.defaultDType == dtype || T.self == Double.self) && MemoryLayout<T>.size == dtype.byteSize
        try HostMemory.reserve(
            count * MemoryLayout<T>.stride + (sameType ? 0 : byteCount),
            for: "scalars: reading a \(dtype) tensor of shape \(Shape.describe(shape)) into host memory")
        if sameType {  // Float from float32, Double from float64, Int32, Int8: read into the result, no second copy
            return try [T](unsafeUninitializedCapacity: count) { out, initialized in
                try source.core.read(source, into: UnsafeMutableRawBufferPointer(out))
                initialized = count
            }
        }
        var raw = [UInt8](repeating: 0, count: byteCount)
        try raw.withUnsafeMutableBytes { try source.core.read(source, into: $0) }
        return raw.withUnsafeBytes { bytes in
            switch dtype {
            case .float32: bytes.bindMemory(to: Float.self).map { T.converting(Double($0)) }
            case .float64: bytes.bindMemory(to: Double.self).map { T.converting($0) }
            case .int32: bytes.bindMemory(to: Int32.self).map { T.converting(Double($0)) }
            case .int8: bytes.bindMemory(to: Int8.self).map { T.converting(Double($0)) }
            case .bool: bytes.bindMemory(to: UInt8.self).map { T.converting(Double($0)) }
            }
        }
    }
}

/// The Swift number types a tensor can be built from and read into.
public protocol TensorScalar: Sendable {
    /// The dtype a tensor built from these takes unless told otherwise (float32 for `Float`,
    /// `Double` and `Int`, which literals produce; int32 and int8 for their own types).
    static var defaultDType: DType { get }
    var doubleValue: Double { get }
    /// Converts from `Double` (integers truncate).
    static func converting(_ d: Double) -> Self
}
extension Float: TensorScalar {
    public static var defaultDType: DType { .float32 }
    public var doubleValue: Double { Double(self) }
    public static func converting(_ d: Double) -> Float { Float(d) }
}
extension Double: TensorScalar {
    public static var defaultDType: DType { .float32 }
    public var doubleValue: Double { self }
    public static func converting(_ d: Double) -> Double { d }
}
extension Int: TensorScalar {
    public static var defaultDType: DType { .float32 }
    public var doubleValue: Double { Double(self) }
    public static func converting(_ d: Double) -> Int { d.isFinite && Swift.abs(d) < 9e18 ? Int(d) : 0 }
}
extension Int32: TensorScalar {
    public static var defaultDType: DType { .int32 }
    public var doubleValue: Double { Double(self) }
    public static func converting(_ d: Double) -> Self { HostConversion.int32(d) }
}
extension Int8: TensorScalar {
    public static var defaultDType: DType { .int8 }
    public var doubleValue: Double { Double(self) }
    public static func converting(_ d: Double) -> Self { HostConversion.int8(d) }
}

/// The least and largest of integer elements' bytes (nil for floating point or no elements).
func integerRange(_ raw: UnsafeRawBufferPointer, _ dtype: DType) -> ClosedRange<Int64>? {
    func range<T: FixedWidthInteger>(_: T.Type) -> ClosedRange<Int64>? {
        let items = raw.bindMemory(to: T.self)
        guard let low = items.min(), let high = items.max() else { return nil }
        return Int64(low)...Int64(high)
    }
    switch dtype {
    case .int32: return range(Int32.self)
    case .int8: return range(Int8.self)
    default: return nil
    }
}

/// Host bytes of `scalars` converted to `dtype`, valid inside `body`.
func withHostBytes<S: TensorScalar, R>(
    _ scalars: [S], as dtype: DType, _ body: (UnsafeRawBufferPointer) throws -> R
) rethrows -> R {
    switch dtype {
    case .float32:
        if S.self == Float.self { return try unsafeBitCast(scalars, to: [Float].self).withUnsafeBytes(body) }
        return try scalars.map { Float($0.doubleValue) }.withUnsafeBytes(body)
    case .float64:
        if S.self == Double.self { return try unsafeBitCast(scalars, to: [Double].self).withUnsafeBytes(body) }
        return try scalars.map(\.doubleValue).withUnsafeBytes(body)
    case .int32: return try scalars.map { HostConversion.int32($0.doubleValue) }.withUnsafeBytes(body)
    case .int8: return try scalars.map { HostConversion.int8($0.doubleValue) }.withUnsafeBytes(body)
    case .bool: return try scalars.map { HostConversion.bool($0.doubleValue) }.withUnsafeBytes(body)
    }
}

extension Tensor: CustomStringConvertible {
    /// `Tensor([4.0, 12.0], shape: [2], dtype: float32)`, with values as TensorFlow prints them
    /// (shortest round-trip form of each element; `nan` whatever its sign bit, where Swift says `-nan`).
    public var description: String {
        if isInert { return "Tensor(inert, shape: \(Shape.describe(shape)), dtype: \(dtype))" }
        let values: [String] =
            dtype == .float64
            ? scalars(as: Double.self).map { $0.isNaN ? "nan" : "\($0)" }
            : dtype.isFloatingPoint ? scalars.map { $0.isNaN ? "nan" : "\($0)" } : scalars(as: Int.self).map { "\($0)" }
        return "Tensor(\(Shape.nested(values[...], shape[...])), shape: \(Shape.describe(shape)), dtype: \(dtype))"
    }
}

// MARK: Literals — every literal is float32.

extension Tensor: ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public init(floatLiteral value: Double) { self.init(shape: [], scalars: [Float(value)]) }
    public init(integerLiteral value: Int) { self.init(shape: [], scalars: [Float(value)]) }
    /// An array literal stacks its elements (``stack(_:axis:)``, recorded like any op):
    /// `[[1, 2], [3, 4]]` has shape `[2, 2]`, and `let s: Tensor = [a, b]` differentiates through
    /// to `a` and `b`, as TensorFlow packs a list of tensors. `[]` is an empty float32 vector.
    /// - Precondition: the elements have one shape (a ragged literal stops with its shapes named).
    public init(arrayLiteral elements: Tensor...) {
        if elements.isEmpty {
            self.init(shape: [0], scalars: [Float]())
            return
        }
        self = stack(elements)
    }
}
