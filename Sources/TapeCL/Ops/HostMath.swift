import CHostMath
import Foundation

/// A host loop of an elementwise op: `out[i] = f(x[i])` for `i < n`, over float64 values (every
/// element type converts to float64 and back exactly; the host backend converts block by block).
package typealias UnaryLoop = @Sendable (_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>, _ n: Int) -> Void
/// `out[i] = f(a[i], b[i])` for `i < n`; the backend has already broadcast the operands.
package typealias BinaryLoop = @Sendable (_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>,
                                          _ out: UnsafeMutablePointer<Double>, _ n: Int) -> Void

/// The loop applying `f` to each element. `f` is a closure literal at each op's table line and
/// this function is inlined there, so the optimiser compiles `f` into the loop (no call per element).
@inline(__always)
func each(_ f: @escaping @Sendable (Double) -> Double) -> UnaryLoop {
    { x, o, n in for i in 0..<n { o[i] = f(x[i]) } }
}
@inline(__always)
func each(_ f: @escaping @Sendable (Double, Double) -> Double) -> BinaryLoop {
    { a, b, o, n in for i in 0..<n { o[i] = f(a[i], b[i]) } }
}

/// sin, cos and exp over blocks: Cephes's double-precision algorithms (S. L. Moshier, `sin.c`
/// and `exp.c`) written without branches so the loops vectorise, in `Sources/CHostMath`, built for
/// AVX2 and for baseline x86-64 with the same bits from both. Accurate to about 1 ulp of a double,
/// so float32 results are libm's rounded to float. Arguments outside the reductions' range
/// (|x| > 2²⁰ for sin and cos, exp beyond ±708, NaN, ±∞) are redone with libm.
package enum HostMath {
    package static let sin: UnaryLoop = { x, o, n in tapecl_sin(x, o, n) }
    package static let cos: UnaryLoop = { x, o, n in tapecl_cos(x, o, n) }
    package static let exp: UnaryLoop = { x, o, n in tapecl_exp(x, o, n) }

    /// The float32 conversions around the block loops, in the same C target for the same reason:
    /// `out[i] = x[i]` widened, `out[i] = Float(x[i])` (`streaming`: with non-temporal stores, for
    /// outputs larger than the cache), and `x[i] = Double(Float(x[i]))` in place
    /// (a value rounded as a float32 kernel would store it). Exactly Swift's conversions.
    @inline(__always) package static func widen(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Double>, _ n: Int) { tapecl_widen(x, out, n) }
    @inline(__always) package static func narrow(_ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Float>, _ n: Int, streaming: Bool = false) {
        if streaming { tapecl_narrow_stream(x, out, n) } else { tapecl_narrow(x, out, n) }
    }
    @inline(__always) package static func round(_ x: UnsafeMutablePointer<Double>, _ n: Int) { tapecl_round(x, n) }
}
