@_spi(Runtime) import TapeCLRuntime

/// The Swift types of tensor elements, for the host loops of indexed ops: a loop written once as
/// `func loop<T: Element>(_: T.Type)` runs for a tensor's dtype as `loop(dtype.element)` (Swift
/// opens the existential metatype).
protocol Element: Numeric, Comparable, Sendable {}
extension Float: Element {}
extension Double: Element {}
extension Int32: Element {}
extension Int8: Element {}
extension UInt8: Element {}

/// float32 and float64: the element types of ops that compute (sums, means).
protocol FloatElement: Element, FloatingPoint {}
extension Float: FloatElement {}
extension Double: FloatElement {}

extension DType {
    /// The Swift type of one element (`UInt8` for bool).
    var element: any Element.Type {
        switch self {
        case .float32: Float.self
        case .float64: Double.self
        case .int32: Int32.self
        case .int8: Int8.self
        case .bool: UInt8.self
        }
    }

    /// The Swift type of a float32 or float64 element (ops that compute are `floatOnly`).
    var float: any FloatElement.Type { self == .float64 ? Double.self : Float.self }
}
