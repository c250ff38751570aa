internal import Foundation

/// Budgets, baselines and the regression rule for operations.
///
/// Budgets default to the seed's `PERFORMANCE_BUDGETS`; a regression is a p99 more than
/// `regressionThreshold` times the baseline's p99, judged only once `minimumSamples` samples
/// exist (a handful of slow first calls is not a regression).
public struct PerformancePolicy: Sendable, Codable, Hashable {
    /// Budget per operation, in microseconds.
    public var budgets: [String: Double]
    /// Baseline p99 per operation, in microseconds.
    public var baselines: [String: Double]
    public var regressionThreshold: Double
    public var minimumSamples: UInt64

    public static let defaultBudgets: [String: Double] = [
        "package_install": 5_000_000,
        "skill_load": 1_000_000,
        "hot_reload": 1_000_000,
        "marketplace_search": 100_000,
        "workflow_validation": 50_000,
        "dependency_resolution": 500_000,
    ]

    public init(
        budgets: [String: Double] = PerformancePolicy.defaultBudgets, baselines: [String: Double] = [:],
        regressionThreshold: Double = 1.5, minimumSamples: UInt64 = 20
    ) {
        self.budgets = budgets
        self.baselines = baselines
        self.regressionThreshold = regressionThreshold
        self.minimumSamples = minimumSamples
    }

    public enum Status: String, Sendable, Codable {
        case ok
        case overBudget = "over_budget"
        case regression
        case noBaseline = "no_baseline"
        /// Too few samples to judge.
        case insufficientSamples = "insufficient_samples"
    }

    /// The outcome of checking one operation's current p99 against its baseline.
    public struct RegressionCheck: Sendable, Hashable {
        public let operation: String
        public let regression: Bool
        public let baseline: Double?
        public let current: Double
        /// Percent slower than the baseline (negative when faster); nil without a baseline.
        public let percentChange: Double?
        public let reason: String
    }

    /// Is `current` (a p99 in microseconds, from `samples` samples) a regression for `operation`?
    public func checkRegression(_ operation: String, current: Double, samples: UInt64) -> RegressionCheck {
        guard let baseline = baselines[operation], baseline > 0 else {
            return RegressionCheck(operation: operation, regression: false, baseline: nil, current: current, percentChange: nil, reason: "no baseline")
        }
        let change = (current / baseline - 1) * 100
        guard samples >= minimumSamples else {
            return RegressionCheck(
                operation: operation, regression: false, baseline: baseline, current: current, percentChange: change,
                reason: "only \(samples) samples; at least \(minimumSamples) are needed to judge")
        }
        let regression = current > baseline * regressionThreshold
        return RegressionCheck(
            operation: operation, regression: regression, baseline: baseline, current: current, percentChange: change,
            reason: regression
                ? String(format: "p99 %.1f us is %.0f%% slower than the baseline %.1f us (threshold %.1fx)", current, change, baseline, regressionThreshold)
                : "within \(regressionThreshold)x of the baseline")
    }

    /// The status of an operation: over budget wins over regression.
    public func status(_ operation: String, _ summary: LatencySummary) -> Status {
        if let budget = budgets[operation], summary.count > 0, summary.p99 > budget { return .overBudget }
        guard baselines[operation] != nil else { return .noBaseline }
        if summary.count < minimumSamples { return .insufficientSamples }
        return checkRegression(operation, current: summary.p99, samples: summary.count).regression ? .regression : .ok
    }

    /// Saves the p99 of each summary as the new baselines (JSON: operation -> p99 in us).
    public static func saveBaselines(_ summaries: [String: LatencySummary], to path: String) throws {
        try saveBaselines(p99: summaries.mapValues(\.p99), to: path)
    }

    /// Saves baselines given as p99 per operation, in microseconds.
    public static func saveBaselines(p99 baselines: [String: Double], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(baselines).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads baselines written by `saveBaselines`.
    public static func loadBaselines(from path: String) throws -> [String: Double] {
        try JSONDecoder().decode([String: Double].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
