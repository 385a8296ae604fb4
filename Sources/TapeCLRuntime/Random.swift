/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, seedable random number generator, the one
/// TapeCL's random initialisers and data sets use. The same seed gives the same numbers on every
/// machine, which Swift's `SystemRandomNumberGenerator` cannot.
///
/// ```swift
/// var rng = SplitMix64(seed: 42)
/// for (images, labels) in digits.batches(size: 64, shuffledBy: &rng) { ... }   // the same order every run
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    /// A generator whose numbers follow from `seed` alone.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }
    /// The output function: every bit of `z` reaches every bit of the result.
    @inlinable
    @_spi(Runtime) public static func mix(_ z: UInt64) -> UInt64 {
        let y = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        let x = (y ^ (y >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }
    /// Uniform in [0, 1) with 53 random bits.
    @_spi(Runtime) public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
