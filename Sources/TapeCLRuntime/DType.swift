/// The element type of a `Tensor`.
///
/// `float32` is the default: `Tensor(3.0)`, `Tensor([1, 2, 3])` and `Variable(-2.0)` are float32.
/// Integer tensors compute but are never differentiated: their gradients are `nil`, as in TensorFlow.
/// `bool` (one byte, 0 or 1) holds masks: what comparisons return and `select` takes.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32, float64, int32, int8, bool

    /// Bytes per element.
    @inlinable public var byteSize: Int {
        switch self {
        case .float32, .int32: 4
        case .float64: 8
        case .int8, .bool: 1
        }
    }

    /// Whether values of this type can carry gradients.
    @inlinable public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    public var description: String { rawValue }
}
