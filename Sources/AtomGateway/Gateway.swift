internal import AtomRPC
public import Logging
internal import Foundation
internal import Synchronization

/// The gateway: one endpoint for every client; routes each call to the least-loaded live
/// instance of its service, enforces deadlines, detects dead instances, and answers the
/// fan-out calls (health of everything, the service listing) itself.
///
/// All broker state lives on one thread that owns the ROUTER socket (see `Broker`).
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    private let broker: Broker
    private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)

    /// Binds the endpoint (throws a clear error when it is taken or invalid).
    public init(configuration: GatewayConfiguration, logger: Logger = Logger(label: "atom.gateway")) throws {
        self.configuration = configuration
        broker = try Broker(configuration: configuration, logger: logger)
    }

    /// The endpoint actually bound (resolves "tcp://127.0.0.1:*" to the port chosen).
    public var boundEndpoint: String { broker.boundEndpoint }

    /// Runs until `stop()` or until the task is cancelled.
    public func run() async {
        let broker = self.broker
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                broker.start { continuation.resume() }
            }
        } onCancel: {
            broker.stop()
        }
    }

    public func stop() { broker.stop() }
}
