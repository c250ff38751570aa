internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import FlyingFox
internal import Foundation
internal import Logging

/// Serves `GET /metrics` (Prometheus text) for the gateway, by asking the gateway itself for
/// its merged metrics on each scrape.
enum MetricsHTTPServer {
    /// Runs until cancelled. `gatewayEndpoint` is where this process's gateway listens.
    static func run(address: String, port: UInt16, gatewayEndpoint: String, security: TransportSecurity, logger: Logger) async throws {
        let client = try RPCClient(endpoint: clientEndpoint(for: gatewayEndpoint), name: "atom-gateway-metrics-http", security: security)
        defer { client.close() }
        let server = HTTPServer(address: try .inet(ip4: address, port: port))
        await server.appendRoute("GET /metrics") { _ in
            do {
                let metrics = try await GatewayClient(client).metrics(GatewayMetricsRequest(), options: CallOptions(timeout: .seconds(5)))
                return HTTPResponse(
                    statusCode: .ok, headers: [.contentType: PrometheusText.contentType],
                    body: Data(PrometheusText.render(metrics).utf8))
            } catch {
                return HTTPResponse(statusCode: .serviceUnavailable, body: Data("metrics unavailable: \(error)\n".utf8))
            }
        }
        logger.info("serving Prometheus metrics", metadata: ["address": "http://\(address):\(port)/metrics"])
        try await server.run()
    }

    /// A wildcard bind address ("tcp://*:7700") is reached on loopback.
    static func clientEndpoint(for endpoint: String) -> String {
        endpoint.replacingOccurrences(of: "tcp://*:", with: "tcp://127.0.0.1:")
            .replacingOccurrences(of: "tcp://0.0.0.0:", with: "tcp://127.0.0.1:")
    }
}
