import CHostMath

/// The host loop of an elementwise unary op, compiled twice from one element function `f`:
/// over float64 values, `out[i] = f(x[i])`, and over float32 values,
/// `out[i] = Float(f(Double(x[i])))` — the float64 value rounded once, which is what a float32
/// kernel stores for `+ − × ÷` (exact: 53 ≥ 2·24 + 2 bits, so no double rounding) and libm's
/// value rounded for the rest. Other element types go through the float64 loop.
@_spi(Runtime) public struct UnaryLoop: Sendable {
    @_spi(Runtime) public typealias Loop<T> =
        @Sendable (_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ n: Int) -> Void
    @_spi(Runtime) public let double: Loop<Double>
    @_spi(Runtime) public let float: Loop<Float>

    @_spi(Runtime) public init(double: @escaping Loop<Double>, float: @escaping Loop<Float>) {
        self.double = double
        self.float = float
    }
}
/// `out[i] = f(a[i], b[i])` for `i < n`, in the same two forms; the backend has already broadcast the operands.
@_spi(Runtime) public struct BinaryLoop: Sendable {
    @_spi(Runtime) public typealias Loop<T> =
        @Sendable (
            _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, _ n: Int
        ) -> Void
    @_spi(Runtime) public let double: Loop<Double>
    @_spi(Runtime) public let float: Loop<Float>

    @_spi(Runtime) public init(double: @escaping Loop<Double>, float: @escaping Loop<Float>) {
        self.double = double
        self.float = float
    }
}

/// sin, cos and exp: Cephes's double-precision algorithms (S. L. Moshier, `sin.c` and `exp.c`)
/// without branches so the loops vectorise, in `Sources/CHostMath`, built for AVX-512, AVX2 and
/// baseline x86-64 with the same bits from all three (the widest the CPU has runs; see ``level``).
/// About 1 ulp of a double, so float32 results (computed in double, rounded once) are libm's
/// rounded to float. Arguments beyond the reductions' range
/// (|x| > 2²⁰ for sin and cos, exp beyond ±708, NaN, ±∞) are redone with libm.
@_spi(Runtime) public enum HostMath {
    @_spi(Runtime) public static let sin = UnaryLoop(
        double: { tapecl_sin($0, $1, $2) }, float: { tapecl_sin_f32($0, $1, $2) })
    @_spi(Runtime) public static let cos = UnaryLoop(
        double: { tapecl_cos($0, $1, $2) }, float: { tapecl_cos_f32($0, $1, $2) })
    @_spi(Runtime) public static let exp = UnaryLoop(
        double: { tapecl_exp($0, $1, $2) }, float: { tapecl_exp_f32($0, $1, $2) })

    /// The instruction set the loops run with: `AVX-512`, `AVX2` or `baseline x86-64`
    /// (`TAPECL_HOST_MATH=avx2` or `baseline` caps it).
    @_spi(Runtime) public static var level: String { ["baseline x86-64", "AVX2", "AVX-512"][Int(tapecl_math_level())] }

    /// Copies `bytes` (a multiple of 4) around the cache (non-temporal stores), for outputs larger
    /// than the cache; fenced, so whoever reads them next sees them.
    @inline(__always) @_spi(Runtime) public static func stream(
        _ x: UnsafeRawPointer, _ out: UnsafeMutableRawPointer, bytes: Int
    ) { tapecl_stream(x, out, bytes) }
}
