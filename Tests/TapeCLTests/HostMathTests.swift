import CHostMath
import Foundation
@_spi(Runtime) import TapeCLRuntime
import Testing

/// The host's sin, cos and exp loops give the same bits whichever instruction set runs them:
/// AVX-512 and AVX2 against baseline x86-64, on millions of arguments (the wider variants where
/// this CPU has them; which ones ran is in the test's name and output).
@Suite("host math variants")
struct HostMathTests {
    typealias Loop<T> = (UnsafePointer<T>?, UnsafeMutablePointer<T>?, Int) -> Void

    /// 2²¹ arguments: uniform in ±8, in ±2²⁰ (the reduction's edge), in ±800 (exp's), ±1e-300
    /// and the special values, with both signs.
    static func arguments() -> [Double] {
        var rng = SplitMix64(seed: 11)
        let scales = [8.0, 1_048_576, 800, 1e-300, 40]
        var values = (0..<(1 << 21)).map { i in scales[i % scales.count] * (2 * rng.nextUnit() - 1) }
        values += [
            0, -0.0, .infinity, -.infinity, .nan, 1_048_576, 1_048_577, 708, 709, -708, -745, .pi / 4,
            .leastNonzeroMagnitude,
        ]
        return values
    }

    static func compare<T: BinaryFloatingPoint>(
        _ x: [T], _ name: String, variants: [(String, Loop<T>)], baseline: Loop<T>
    ) -> Int {
        var expected = [T](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { baseline($0.baseAddress, &expected, x.count) }
        var differing = 0
        for (level, loop) in variants {
            var got = [T](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { loop($0.baseAddress, &got, x.count) }
            let bad = zip(got, expected).filter { a, b in !(a == b || (a.isNaN && b.isNaN)) }.count
            #expect(bad == 0, "\(name) \(level): \(bad) of \(x.count) values differ from baseline")
            differing += bad
        }
        return differing
    }

    @Test func everyVariantGivesTheBaselineBits() {
        let level = Int(tapecl_math_level())
        let x = Self.arguments()
        let xf = x.map(Float.init)
        func variants<T>(_ avx512: @escaping Loop<T>, _ avx2: @escaping Loop<T>) -> [(String, Loop<T>)] {
            (level >= 2 ? [("AVX-512", avx512)] : []) + (level >= 1 ? [("AVX2", avx2)] : [])
        }
        var compared = 0
        compared += Self.compare(
            x, "sin", variants: variants(tapecl_sin_avx512, tapecl_sin_avx2), baseline: tapecl_sin_baseline)
        compared += Self.compare(
            x, "cos", variants: variants(tapecl_cos_avx512, tapecl_cos_avx2), baseline: tapecl_cos_baseline)
        compared += Self.compare(
            x, "exp", variants: variants(tapecl_exp_avx512, tapecl_exp_avx2), baseline: tapecl_exp_baseline)
        compared += Self.compare(
            xf, "sin f32", variants: variants(tapecl_sin_f32_avx512, tapecl_sin_f32_avx2),
            baseline: tapecl_sin_f32_baseline)
        compared += Self.compare(
            xf, "cos f32", variants: variants(tapecl_cos_f32_avx512, tapecl_cos_f32_avx2),
            baseline: tapecl_cos_f32_baseline)
        compared += Self.compare(
            xf, "exp f32", variants: variants(tapecl_exp_f32_avx512, tapecl_exp_f32_avx2),
            baseline: tapecl_exp_f32_baseline)
        #expect(compared == 0)
        print(
            "host math: this CPU runs \(HostMath.level); compared \(variants(tapecl_sin_avx512, tapecl_sin_avx2).map(\.0)) with baseline on \(x.count) arguments per function"
        )
    }
}
