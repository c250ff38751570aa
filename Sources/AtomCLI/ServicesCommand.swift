internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom services`: the gateway's registry of services, instances and methods.
struct ServicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "services", abstract: "List the services, their instances and methods.")

    @OptionGroup var options: GatewayOptions

    func run() async throws {
        try await reportingFailures(json: options.json) {
            let endpoint = try options.environment().gateway
            let client = try options.client()
            defer { client.close() }
            let listing = try await GatewayClient(client).listServices(ListServicesRequest(), options: options.callOptions)
            if options.json {
                try printJSON(ServicesView(listing))
                return
            }
            if listing.services.isEmpty { print("no services registered at \(endpoint)") }
            for service in listing.services {
                print("\(service.name)  \(service.instances.count) instance(s)  \(service.queued) queued")
                print("  methods: \(service.methods.joined(separator: ", "))")
                for instance in service.instances {
                    print("  \(instance.instanceId)  inflight \(instance.inflight)/\(instance.capacity)  calls \(instance.callsTotal)  seen \(instance.lastSeenMsAgo) ms ago  pid \(instance.pid)@\(instance.host)  v\(instance.version)")
                }
            }
        }
    }
}

/// The JSON shape of `atom services --json`.
struct ServicesView: Encodable {
    struct Instance: Encodable {
        let id: String, capacity: UInt32, inflight: UInt32, pid: UInt32, host: String, version: String
        let connected_ms: UInt64, last_seen_ms_ago: UInt64, calls_total: UInt64
    }
    struct Service: Encodable {
        let name: String, methods: [String], queued: UInt32, instances: [Instance]
    }
    let services: [Service]

    init(_ listing: ListServicesResponse) {
        services = listing.services.map { service in
            Service(name: service.name, methods: service.methods, queued: service.queued, instances: service.instances.map {
                Instance(
                    id: $0.instanceId, capacity: $0.capacity, inflight: $0.inflight, pid: $0.pid, host: $0.host,
                    version: $0.version, connected_ms: $0.connectedMs, last_seen_ms_ago: $0.lastSeenMsAgo,
                    calls_total: $0.callsTotal)
            })
        }
    }
}
