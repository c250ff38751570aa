internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom health`: the gateway's fan-out health of every service and instance.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Show the health of the gateway, every service and every instance.",
        discussion: "Exits 0 when every service is serving, 5 when one is not, 3 when the gateway is not reachable.")

    @OptionGroup var options: GatewayOptions

    @Option(name: .long, help: "Only this service, e.g. atom.v1.Echo.")
    var service: String?

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let endpoint = try options.environment().gateway
            let client = try options.client()
            defer { client.close() }
            let health = try await GatewayClient(client).health(
                GatewayHealthRequest(service: service ?? ""), options: options.callOptions)
            let healthy = health.gatewayStatus == .serving && health.services.allSatisfy { $0.status == .serving }
            if options.json {
                try printJSON(HealthView(health, endpoint: endpoint, healthy: healthy))
            } else {
                print(HealthView.text(health, endpoint: endpoint))
            }
            if !healthy { throw ExitCode(ExitStatus.unhealthy.rawValue) }
        }
    }
}

/// The JSON shape of `atom health --json`.
struct HealthView: Encodable {
    struct Instance: Encodable {
        let id: String, status: String, message: String, inflight: UInt32, capacity: UInt32
        let uptime_ms: UInt64, latency_us: UInt32, version: String, pid: UInt32, host: String
    }
    struct Service: Encodable {
        let name: String, status: String, instances: [Instance]
    }
    let endpoint: String
    let healthy: Bool
    let gateway_status: String
    let gateway_uptime_ms: UInt64
    let gateway_version: String
    let dropped_messages: UInt64
    let services: [Service]

    init(_ health: GatewayHealthResponse, endpoint: String, healthy: Bool) {
        self.endpoint = endpoint
        self.healthy = healthy
        gateway_status = health.gatewayStatus.displayName
        gateway_uptime_ms = health.gatewayUptimeMs
        gateway_version = health.gatewayVersion
        dropped_messages = health.droppedMessages
        services = health.services.map { service in
            Service(name: service.service, status: service.status.displayName, instances: service.instances.map {
                Instance(
                    id: $0.instanceId, status: $0.status.displayName, message: $0.message, inflight: $0.inflight,
                    capacity: $0.capacity, uptime_ms: $0.uptimeMs, latency_us: $0.latencyUs, version: $0.version,
                    pid: $0.pid, host: $0.host)
            })
        }
    }

    static func text(_ health: GatewayHealthResponse, endpoint: String) -> String {
        var gateway = "gateway  \(health.gatewayStatus.displayName)  \(endpoint)  up \(formatUptime(health.gatewayUptimeMs))  v\(health.gatewayVersion)"
        if health.droppedMessages > 0 { gateway += "  (\(health.droppedMessages) malformed messages dropped)" }
        var lines = [gateway]
        if health.services.isEmpty {
            lines.append("no services registered")
        }
        for service in health.services {
            let serving = service.instances.filter { $0.status == .serving }.count
            lines.append("\(service.service)  \(service.status.displayName)  \(serving)/\(service.instances.count) instances serving")
            for instance in service.instances {
                var line = "  \(instance.instanceId)  \(instance.status.displayName)  inflight \(instance.inflight)/\(instance.capacity)"
                if instance.status == .serving {
                    line += "  latency \(instance.latencyUs) us  up \(formatUptime(instance.uptimeMs))"
                }
                line += "  pid \(instance.pid)@\(instance.host)"
                if !instance.message.isEmpty { line += "  (\(instance.message))" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

func formatUptime(_ milliseconds: UInt64) -> String {
    let seconds = Double(milliseconds) / 1000
    if seconds < 60 { return String(format: "%.1fs", seconds) }
    if seconds < 3600 { return String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60) }
    return String(format: "%dh%02dm", Int(seconds) / 3600, (Int(seconds) % 3600) / 60)
}

extension ServingStatus {
    var displayName: String {
        let prefix = "SERVING_STATUS_"
        return protoName.hasPrefix(prefix) ? String(protoName.dropFirst(prefix.count)) : protoName
    }
}
