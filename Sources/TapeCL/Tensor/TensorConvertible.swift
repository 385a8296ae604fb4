@_spi(Runtime) import TapeCLRuntime

/// Anything that can stand in an expression with tensors: a ``Tensor``, a ``Variable`` (which
/// reads its value, marking it accessed on the active tapes) or a Swift number.
///
/// One generic set of operators over this protocol keeps expressions such as
/// `pow(x + b, 2) + 2 * x * b` quick to type-check and lets a number sit on either side.
/// A number takes the dtype and device of the tensor beside it, as in TensorFlow:
/// `2 * x` is float64 when `x` is.
public protocol TensorConvertible {
    /// The tensor this value stands for next to `other` (`nil`: standing alone).
    func tensor(like other: Tensor?) -> Tensor
    /// Whether this is a bare number (which adopts its neighbour's dtype and device).
    static var isNumber: Bool { get }
}

extension TensorConvertible {
    public static var isNumber: Bool { false }
}

extension Tensor: TensorConvertible {
    public func tensor(like other: Tensor?) -> Tensor { self }
}

/// A number as a scalar tensor of its neighbour's dtype on its neighbour's device (float32 on
/// the current device alone). Cached per device, so a constant in a loop is uploaded once.
func numberTensor(_ value: Double, like other: Tensor?) -> Tensor {
    let dtype = other?.dtype ?? .float32
    if let other, other.handle == nil {  // a float scalar on the host, kept in the value: nothing to upload
        return Tensor(hostScalar: Storage.bits(of: value, as: dtype), dtype: dtype)
    }
    let device = other?.device ?? .current
    return Constants.tensor(value, dtype: dtype, on: device) {
        Tensor(shape: [], scalars: [value], dtype: dtype, on: device)
    }
}

extension Double: TensorConvertible {
    public func tensor(like other: Tensor?) -> Tensor { numberTensor(self, like: other) }
    public static var isNumber: Bool { true }
}
extension Float: TensorConvertible {
    public func tensor(like other: Tensor?) -> Tensor { numberTensor(Double(self), like: other) }
    public static var isNumber: Bool { true }
}
extension Int: TensorConvertible {
    public func tensor(like other: Tensor?) -> Tensor { numberTensor(Double(self), like: other) }
    public static var isNumber: Bool { true }
}

/// Both operands as tensors, a number adopting the other side's dtype and device.
@inline(__always)
func resolve<L: TensorConvertible, R: TensorConvertible>(_ l: L, _ r: R) -> (Tensor, Tensor) {
    if L.isNumber {
        let b = r.tensor(like: nil)
        return (l.tensor(like: b), b)
    }
    let a = l.tensor(like: nil)
    return (a, r.tensor(like: a))
}
