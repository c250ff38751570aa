public import AtomProto
internal import Foundation

/// Renders the gateway's merged metrics in Prometheus' text exposition format (version 0.0.4),
/// so an existing Prometheus can scrape the gateway (`ATOM_METRICS_HTTP_PORT`), and
/// `atom metrics --prometheus` prints the same text.
public enum PrometheusText {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ metrics: GatewayMetricsResponse) -> String {
        var lines: [String] = []
        let quantiles: [(String, KeyPath<OperationSummary, Double>)] = [
            ("0.5", \.p50Us), ("0.95", \.p95Us), ("0.99", \.p99Us), ("0.999", \.p999Us),
        ]
        func seconds(_ us: Double) -> String { String(format: "%.9f", us / 1_000_000) }
        func summary(_ name: String, help: String, labels: [(String, String)], _ operations: [OperationSummary]) {
            for operation in operations {
                let base = labels + [("operation", operation.operation)]
                for (quantile, path) in quantiles {
                    lines.append("\(name)\(labelSet(base + [("quantile", quantile)])) \(seconds(operation[keyPath: path]))")
                }
                lines.append("\(name)_sum\(labelSet(base)) \(seconds(operation.meanUs * Double(operation.count)))")
                lines.append("\(name)_count\(labelSet(base)) \(operation.count)")
            }
        }

        lines.append("# HELP atom_operation_latency_seconds Latency of each operation, merged over every instance.")
        lines.append("# TYPE atom_operation_latency_seconds summary")
        summary("atom_operation_latency_seconds", help: "", labels: [], metrics.operations)

        lines.append("# HELP atom_instance_operation_latency_seconds Latency of each operation at each instance.")
        lines.append("# TYPE atom_instance_operation_latency_seconds summary")
        for instance in metrics.instances {
            summary(
                "atom_instance_operation_latency_seconds", help: "",
                labels: [("service", instance.service), ("instance", instance.instanceId)], instance.operations)
        }

        lines.append("# HELP atom_operation_budget_seconds The latency budget of an operation (p99).")
        lines.append("# TYPE atom_operation_budget_seconds gauge")
        for operation in metrics.operations where operation.budgetUs > 0 {
            lines.append("atom_operation_budget_seconds\(labelSet([("operation", operation.operation)])) \(seconds(operation.budgetUs))")
        }

        lines.append("# HELP atom_operation_alert 1 while an operation is over budget or regressed past its baseline.")
        lines.append("# TYPE atom_operation_alert gauge")
        for alert in metrics.alerts {
            lines.append("atom_operation_alert\(labelSet([("operation", alert.operation), ("kind", alert.kind)])) 1")
        }

        lines.append("# HELP atom_metrics_missing_instances Instances that did not answer the metrics fan-out in time.")
        lines.append("# TYPE atom_metrics_missing_instances gauge")
        lines.append("atom_metrics_missing_instances \(metrics.missing.count)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `{a="x",b="y"}` with Prometheus' escaping of backslash, double quote and newline.
    static func labelSet(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        let body = labels.map { name, value in
            let escaped = value
                .replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\(name)=\"\(escaped)\""
        }
        return "{\(body.joined(separator: ","))}"
    }
}
