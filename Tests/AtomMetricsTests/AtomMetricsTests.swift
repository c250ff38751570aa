import AtomMetrics
import Foundation
import Histogram
import AtomTesting
import Testing

@Suite("Latency metrics")
struct AtomMetricsTests {
    @Test("percentiles of a known distribution are exact to the histogram's precision")
    func percentileAccuracy() {
        let recorder = LatencyRecorder()
        // 1..10000 microseconds, once each: p50 = 5000 us, p99 = 9900 us, p99.9 = 9990 us.
        for us in 1...10_000 { recorder.record("op", .microseconds(us)) }
        let summary = LatencySummary(recorder.snapshot()["op"]!)
        #expect(summary.count == 10_000)
        #expect(abs(summary.p50 - 5_000) / 5_000 < 0.001)
        #expect(abs(summary.p95 - 9_500) / 9_500 < 0.001)
        #expect(abs(summary.p99 - 9_900) / 9_900 < 0.001)
        #expect(abs(summary.p999 - 9_990) / 9_990 < 0.001)
        #expect(abs(summary.mean - 5_000.5) / 5_000 < 0.001)
        #expect(summary.min == 1)
        #expect(abs(summary.max - 10_000) / 10_000 < 0.001)
    }

    @Test("merging the buckets of several instances equals the histogram of all samples")
    func mergeEqualsCombined() {
        var generator = SeededRandom.forTest(7)
        var parts = (0..<3).map { _ in (0..<5_000).map { _ in UInt64.random(in: 1_000...50_000_000, using: &generator) } }
        // A tail above every random value, so p99.9 always falls in the max's bucket (the case where
        // exact and merged histograms report different numbers within one bucket).
        parts[2] += Array(repeating: 50_000_001, count: 40)
        var combined = LatencyRecorder.makeHistogram()
        for value in parts.joined() { _ = combined.record(value) }
        var merged = LatencyRecorder.makeHistogram()
        for part in parts {
            let recorder = LatencyRecorder()
            for value in part { recorder.record("op", nanoseconds: value) }
            // Through the wire form.
            let buckets = HistogramBuckets(recorder.snapshot()["op"]!)
            HistogramBuckets(buckets: buckets.buckets).add(to: &merged)
        }
        #expect(merged.totalCount == combined.totalCount)
        // The same bucket for every percentile. Not always the same number: the library clamps a
        // percentile to the exact max (or min) recorded, and the merged histogram knows only the
        // extremes' buckets, so a percentile that falls in the top bucket differs within that bucket.
        for percentile in [1.0, 50, 90, 95, 99, 99.9] {
            let fromBuckets = merged.valueAtPercentile(percentile)
            let fromSamples = combined.valueAtPercentile(percentile)
            #expect(combined.valuesAreEquivalent(fromBuckets, fromSamples), "p\(percentile): \(fromBuckets) against \(fromSamples)")
        }
        // The exact extremes are not on the wire, only their buckets: equal to the precision.
        #expect(combined.valuesAreEquivalent(merged.max, combined.max))
        #expect(combined.valuesAreEquivalent(merged.min, combined.min))
        #expect(abs(merged.mean - combined.mean) / combined.mean < 0.001)
    }

    @Test("regression checks: the 1.5x threshold, its edge, the minimum-sample guard, no baseline")
    func regressionRules() {
        let policy = PerformancePolicy(baselines: ["package_install": 4_000_000], regressionThreshold: 1.5, minimumSamples: 10)
        #expect(policy.checkRegression("package_install", current: 6_000_001, samples: 10).regression)
        #expect(!policy.checkRegression("package_install", current: 6_000_000, samples: 10).regression)
        #expect(!policy.checkRegression("package_install", current: 9_000_000, samples: 9).regression)
        let slower = policy.checkRegression("package_install", current: 6_000_001, samples: 50)
        #expect(abs((slower.percentChange ?? 0) - 50) < 0.01)
        #expect(!policy.checkRegression("unknown_op", current: 1e9, samples: 1_000).regression)
        #expect(policy.checkRegression("unknown_op", current: 1, samples: 1).baseline == nil)
    }

    @Test("status: over budget wins, then regression; budgets default to the seed's")
    func statuses() {
        #expect(PerformancePolicy.defaultBudgets["marketplace_search"] == 100_000)
        #expect(PerformancePolicy.defaultBudgets["workflow_validation"] == 50_000)
        #expect(PerformancePolicy.defaultBudgets["dependency_resolution"] == 500_000)
        let policy = PerformancePolicy(baselines: ["marketplace_search": 10_000], minimumSamples: 5)
        func summary(p99: UInt64, count: Int) -> LatencySummary {
            var histogram = LatencyRecorder.makeHistogram()
            for _ in 0..<count { _ = histogram.record(p99 * 1000) }
            return LatencySummary(histogram)
        }
        #expect(policy.status("marketplace_search", summary(p99: 150_000, count: 10)) == .overBudget)
        #expect(policy.status("marketplace_search", summary(p99: 20_000, count: 10)) == .regression)
        #expect(policy.status("marketplace_search", summary(p99: 12_000, count: 10)) == .ok)
        #expect(policy.status("marketplace_search", summary(p99: 20_000, count: 2)) == .insufficientSamples)
        #expect(policy.status("skill_execute", summary(p99: 20_000, count: 10)) == .noBaseline)
    }

    @Test("baselines survive a save and a load")
    func baselineFile() throws {
        let path = NSTemporaryDirectory() + "atom-baselines-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        var histogram = LatencyRecorder.makeHistogram()
        _ = histogram.record(2_000_000)
        try PerformancePolicy.saveBaselines(["skill_load": LatencySummary(histogram)], to: path)
        let loaded = try PerformancePolicy.loadBaselines(from: path)
        #expect(abs((loaded["skill_load"] ?? 0) - 2_000) < 2)
        #expect(throws: (any Error).self) { try PerformancePolicy.loadBaselines(from: path + ".missing") }
    }
}
