import Foundation

/// A small seeded generator (SplitMix64), so randomised tests are the same on every run and a
/// failure in CI can be replayed. `ATOM_TEST_SEED=<number>` explores other sequences locally.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The generator for one test: `salt` keeps tests' sequences apart; the base is
    /// `ATOM_TEST_SEED` when set, else fixed.
    public static func forTest(_ salt: UInt64) -> SeededRandom {
        SeededRandom(seed: baseSeed ^ salt)
    }

    /// The base of every test's seed.
    public static var baseSeed: UInt64 {
        ProcessInfo.processInfo.environment["ATOM_TEST_SEED"].flatMap { UInt64($0) } ?? 0x5EED_A70F
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
