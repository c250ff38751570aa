internal import ArgumentParser
internal import AtomAPI
internal import AtomGateway
internal import AtomMetrics
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom metrics`: latency of every operation, merged over every instance by the gateway.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Show p50/p95/p99 of every operation across every instance, with budgets and alerts.",
        discussion: """
            Exits 5 when an operation is over its budget or regressed past 1.5x its baseline \
            (baselines: ATOM_METRICS_BASELINES on the gateway).
            """)

    @OptionGroup var options: GatewayOptions

    @Flag(name: .long, help: "Show each instance's figures too.")
    var instances = false

    @Flag(name: .long, help: "Print Prometheus' text exposition format (what the gateway serves on ATOM_METRICS_HTTP_PORT).")
    var prometheus = false

    @Option(name: .long, help: "Save the merged p99 of every operation as baselines to this file.")
    var saveBaselines: String?

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let client = try options.client()
            defer { client.close() }
            let metrics = try await GatewayClient(client).metrics(GatewayMetricsRequest(), options: options.callOptions)
            if let saveBaselines {
                var baselines: [String: Double] = [:]
                for operation in metrics.operations { baselines[operation.operation] = operation.p99Us }
                do {
                    try PerformancePolicy.saveBaselines(p99: baselines, to: saveBaselines)
                } catch {
                    throw CLIFailure(.failure, "cannot write \(saveBaselines): \(error.localizedDescription)")
                }
            }
            if prometheus {
                print(PrometheusText.render(metrics), terminator: "")
            } else if options.json {
                try printJSON(MetricsView(metrics))
            } else {
                print(MetricsView.table(metrics, instances: instances))
            }
            if !metrics.alerts.isEmpty { throw ExitCode(ExitStatus.unhealthy.rawValue) }
        }
    }
}

/// The JSON shape of `atom metrics --json`.
struct MetricsView: Encodable {
    struct Operation: Encodable {
        let operation: String, count: UInt64, mean_us: Double, min_us: Double, max_us: Double
        let p50_us: Double, p95_us: Double, p99_us: Double, p999_us: Double
        let budget_us: Double?, baseline_p99_us: Double?, status: String

        init(_ summary: OperationSummary) {
            operation = summary.operation
            count = summary.count
            mean_us = summary.meanUs
            min_us = summary.minUs
            max_us = summary.maxUs
            p50_us = summary.p50Us
            p95_us = summary.p95Us
            p99_us = summary.p99Us
            p999_us = summary.p999Us
            budget_us = summary.budgetUs > 0 ? summary.budgetUs : nil
            baseline_p99_us = summary.baselineP99Us > 0 ? summary.baselineP99Us : nil
            status = summary.status
        }
    }
    struct Instance: Encodable {
        let service: String, instance_id: String, operations: [Operation]
    }
    struct Alert: Encodable {
        let operation: String, kind: String, message: String
    }
    let operations: [Operation]
    let instances: [Instance]
    let missing: [String]
    let alerts: [Alert]

    init(_ response: GatewayMetricsResponse) {
        operations = response.operations.map(Operation.init)
        instances = response.instances.map {
            Instance(service: $0.service, instance_id: $0.instanceId, operations: $0.operations.map(Operation.init))
        }
        missing = response.missing
        alerts = response.alerts.map { Alert(operation: $0.operation, kind: $0.kind, message: $0.message) }
    }

    static func table(_ response: GatewayMetricsResponse, instances: Bool) -> String {
        func ms(_ us: Double) -> String { us >= 1000 ? String(format: "%.1f ms", us / 1000) : String(format: "%.0f us", us) }
        var rows: [[String]] = [["OPERATION", "COUNT", "P50", "P95", "P99", "BUDGET", "STATUS"]]
        for operation in response.operations {
            rows.append([
                operation.operation, String(operation.count), ms(operation.p50Us), ms(operation.p95Us), ms(operation.p99Us),
                operation.budgetUs > 0 ? ms(operation.budgetUs) : "-", operation.status,
            ])
        }
        if instances {
            for instance in response.instances {
                for operation in instance.operations {
                    rows.append([
                        "  \(instance.instanceId) \(operation.operation)", String(operation.count), ms(operation.p50Us),
                        ms(operation.p95Us), ms(operation.p99Us), operation.budgetUs > 0 ? ms(operation.budgetUs) : "-", operation.status,
                    ])
                }
            }
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { index, cell in cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        if response.operations.isEmpty { lines.append("no operations recorded yet") }
        for missing in response.missing { lines.append("missing: \(missing) did not answer in time") }
        for alert in response.alerts { lines.append("ALERT \(alert.operation) (\(alert.kind)): \(alert.message)") }
        return lines.joined(separator: "\n")
    }
}
