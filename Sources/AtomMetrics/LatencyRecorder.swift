public import Histogram
internal import Synchronization

/// Records durations per operation into HdrHistograms (nanoseconds, 3 significant digits).
/// Thread-safe; recording is a lock and an array increment.
public final class LatencyRecorder: Sendable {
    private let histograms = Mutex<[String: Histogram<UInt64>]>([:])

    public init() {}

    /// A histogram sized for latencies from 1 ns to 1 hour.
    public static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    }

    public func record(_ operation: String, _ duration: Duration) {
        record(operation, nanoseconds: LatencyRecorder.nanoseconds(duration))
    }

    public func record(_ operation: String, nanoseconds: UInt64) {
        let value = min(max(nanoseconds, 1), 3_600_000_000_000)
        histograms.withLock { histograms in
            // Mutated in place through the dictionary (no copy of the counts array).
            _ = histograms[operation, default: LatencyRecorder.makeHistogram()].record(value)
        }
    }

    /// Times `body` and records it under `operation` (also when it throws).
    public func measure<T>(_ operation: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer { record(operation, ContinuousClock.now - start) }
        return try await body()
    }

    /// A copy of every histogram recorded so far.
    public func snapshot() -> [String: Histogram<UInt64>] {
        histograms.withLock { $0 }
    }

    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }
}

/// The buckets of a histogram (value, count), the mergeable form that crosses the wire.
public struct HistogramBuckets: Sendable, Hashable {
    public var buckets: [(value: UInt64, count: UInt64)]

    public static func == (lhs: HistogramBuckets, rhs: HistogramBuckets) -> Bool {
        lhs.buckets.elementsEqual(rhs.buckets) { $0.value == $1.value && $0.count == $1.count }
    }

    public func hash(into hasher: inout Hasher) {
        for bucket in buckets {
            hasher.combine(bucket.value)
            hasher.combine(bucket.count)
        }
    }

    public init(buckets: [(value: UInt64, count: UInt64)]) {
        self.buckets = buckets
    }

    /// Every distinct recorded value (at the histogram's precision) with its count.
    public init(_ histogram: Histogram<UInt64>) {
        buckets = histogram.recordedValues().map { (histogram.highestEquivalentForValue($0.value), UInt64($0.count)) }
    }

    /// Adds these buckets to `histogram`: merging the buckets of several instances gives the
    /// histogram of all their samples (percentiles are never averaged).
    public func add(to histogram: inout Histogram<UInt64>) {
        for bucket in buckets where bucket.count > 0 {
            _ = histogram.record(min(max(bucket.value, 1), histogram.highestTrackableValue), count: bucket.count)
        }
    }
}
