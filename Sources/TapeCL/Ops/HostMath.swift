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

/// sin, cos and exp over blocks, as Cephes computes them in double precision (S. L. Moshier,
/// `sin.c` and `exp.c`): reduction by π/4 in three parts and by ln 2 in two, then the same
/// polynomials, written without branches so each loop vectorises. Accurate to about 1 ulp of a
/// double, so float32 results are libm's rounded to float. Arguments outside the reduction's range
/// (|x| > 2²⁰ for sin and cos, exp beyond ±708, NaN, ±∞) are redone with libm in a second pass.
package enum HostMath {
    /// 1.5 · 2⁵²: adding it rounds a double of magnitude below 2⁵¹ to an integer held in the low bits.
    private static let magic = 0x1.8p52

    package static let sin: UnaryLoop = { x, o, n in sincos(x, o, n, cosine: false) }
    package static let cos: UnaryLoop = { x, o, n in sincos(x, o, n, cosine: true) }

    @inline(__always)
    private static func sincos(_ x: UnsafePointer<Double>, _ o: UnsafeMutablePointer<Double>, _ n: Int, cosine: Bool) {
        let (dp1, dp2, dp3) = (7.85398125648498535156e-1, 3.77489470793079817668e-8, 2.69515142907905952645e-15)
        for i in 0..<n {
            let v = x[i], a = Swift.min(Swift.abs(v), 1048576)     // larger (and NaN) arguments: second pass
            let t = a * 1.27323954473516268615                    // 4/π
            var q = (t + magic) - magic
            q = q > t ? q - 1 : q                                  // floor(t)
            let odd = (q + magic).bitPattern & 1
            q += Double(odd)                                       // even octant: j ∈ {0, 2, 4, 6}
            let j = ((q + magic).bitPattern & 7)
            let z = ((a - q * dp1) - q * dp2) - q * dp3            // |z| ≤ π/4
            let zz = z * z
            let s = z + z * zz * (((((1.58962301576546568060e-10 * zz - 2.50507477628578072866e-8) * zz
                + 2.75573136213857245213e-6) * zz - 1.98412698295895385996e-4) * zz + 8.33333333332211858878e-3) * zz
                - 1.66666666666666307295e-1)
            let c = 1 - 0.5 * zz + zz * zz * (((((-1.13585365213876817300e-11 * zz + 2.08757008419747316778e-9) * zz
                - 2.75573141792967388112e-7) * zz + 2.48015872888517045348e-5) * zz - 1.38888888888730564116e-3) * zz
                + 4.16666666666665929218e-2)
            // sin(a) by octant j: s, c, -s, -c; cos(a): c, -s, -c, s; sin is odd, cos even.
            let r = (j & 2 == 0) != cosine ? s : c
            let negative = cosine ? (j + 2) & 4 != 0 : (j & 4 != 0) != (v.sign == .minus)
            o[i] = negative ? -r : r
        }
        for i in 0..<n where !(Swift.abs(x[i]) <= 1048576) { o[i] = cosine ? Foundation.cos(x[i]) : Foundation.sin(x[i]) }
    }

    package static let exp: UnaryLoop = { x, o, n in
        for i in 0..<n {
            let v = Swift.min(Swift.max(x[i], -708), 708)          // beyond (and NaN): second pass
            let t = 1.4426950408889634073599 * v + magic          // v / ln 2, rounded
            let k = Int64(bitPattern: t.bitPattern & 0xF_FFFF_FFFF_FFFF) - 0x8_0000_0000_0000
            let p = t - magic
            let r = (v - p * 6.93145751953125e-1) - p * 1.42860682030941723212e-6   // v - k ln 2
            let rr = r * r
            let pr = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1)
            let qr = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr
                + 2.00000000000000000009e0
            o[i] = (1 + 2 * pr / (qr - pr)) * Double(bitPattern: UInt64(truncatingIfNeeded: k &+ 1023) << 52)
        }
        for i in 0..<n where !(Swift.abs(x[i]) <= 708) { o[i] = Foundation.exp(x[i]) }
    }
}
