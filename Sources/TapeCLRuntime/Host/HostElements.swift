/// The Swift types of tensor elements, for the host loops of indexed ops (HostImages, HostIndexing):
/// a loop written once as `func loop<T: Element>(_: T.Type)` runs for a tensor's dtype as
/// `forEachType(dtype, loop, loop, loop, loop, loop)`, each argument a copy of the loop compiled for
/// one type (calling it through an existential metatype instead ran unspecialised, 3× slower in
/// col2im).
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

/// Runs the loop compiled for `dtype`'s element type (`UInt8` for bool).
@inline(__always)
func forEachType(
    _ dtype: DType, _ f32: (Float.Type) -> Void, _ f64: (Double.Type) -> Void, _ i32: (Int32.Type) -> Void,
    _ i8: (Int8.Type) -> Void, _ bool: (UInt8.Type) -> Void
) {
    switch dtype {
    case .float32: f32(Float.self)
    case .float64: f64(Double.self)
    case .int32: i32(Int32.self)
    case .int8: i8(Int8.self)
    case .bool: bool(UInt8.self)
    }
}

/// Runs the loop compiled for float32 or float64 (ops that compute are `floatOnly`).
@inline(__always)
func forFloatType(_ dtype: DType, _ f32: (Float.Type) -> Void, _ f64: (Double.Type) -> Void) {
    if dtype == .float64 { f64(Double.self) } else { f32(Float.self) }
}
