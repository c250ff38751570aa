internal import ArgumentParser
internal import AtomRPC

/// `--timeout` and `--deadline`: a number of seconds, checked when the command line is parsed so
/// that `nan`, `inf`, `0`, `-5` or `1e300` are a usage error (exit 2) instead of a call that fails
/// at once, a crash in the conversion to a duration, or a wait without end.
enum SecondsArgument {
    /// Thirty days: longer than any call the services accept, short enough to be a real duration.
    static let maximum: Double = 30 * 86_400

    static func parse(_ text: String) throws -> Double {
        guard let value = Double(text), value.isFinite, value > 0, value <= maximum else {
            throw ValidationError("not a number of seconds above 0 and at most \(Int(maximum)) (30 days)")
        }
        return value
    }

    /// Call options whose deadline is `seconds` from now, rounded up to whole milliseconds.
    static func callOptions(_ seconds: Double) -> CallOptions {
        CallOptions(timeout: .milliseconds(Int64((min(seconds, maximum) * 1000).rounded(.up))))
    }
}
