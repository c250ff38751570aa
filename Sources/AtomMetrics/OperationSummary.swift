public import Histogram

/// The figures of one operation, in microseconds.
public struct LatencySummary: Sendable, Hashable, Codable {
    public var count: UInt64
    public var mean: Double
    public var min: Double
    public var max: Double
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public var p999: Double

    public init(_ histogram: Histogram<UInt64>) {
        func us(_ ns: UInt64) -> Double { Double(ns) / 1000 }
        count = histogram.totalCount
        guard count > 0 else {
            mean = 0; min = 0; max = 0; p50 = 0; p95 = 0; p99 = 0; p999 = 0
            return
        }
        mean = histogram.mean / 1000
        min = us(histogram.min)
        max = us(histogram.max)
        p50 = us(histogram.valueAtPercentile(50))
        p95 = us(histogram.valueAtPercentile(95))
        p99 = us(histogram.valueAtPercentile(99))
        p999 = us(histogram.valueAtPercentile(99.9))
    }
}
