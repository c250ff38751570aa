internal import Logging
@preconcurrency internal import Dispatch
internal import Foundation
internal import Synchronization

/// The whole `main` of a service executable: reads the environment, bootstraps logging,
/// serves until SIGTERM or SIGINT (graceful drain; a second signal exits at once).
public enum ServiceMain {
    /// - Parameters:
    ///   - willServe: runs once the server exists, before it serves (background work of the
    ///     service that records into `server.metrics`).
    ///   - didStop: runs after the drain, before the process exits (child processes, files).
    public static func run(
        _ service: any RPCService, label: String,
        handlerExecution: RPCServerConfiguration.HandlerExecution = .sharedPool,
        willServe: (@Sendable (RPCServer) async -> Void)? = nil,
        didStop: (@Sendable () async -> Void)? = nil
    ) async -> Never {
        let environment: AtomEnvironment
        let security: TransportSecurity
        do {
            environment = try AtomEnvironment()
            security = try environment.clientSecurity()
        } catch {
            FileHandle.standardError.write(Data("\(label): \(error)\n".utf8))
            exit(2)
        }
        bootstrapLogging(level: environment.logLevel)
        ReactorScheduling.configure(slice: environment.reactorSlice)
        var logger = Logger(label: label)
        logger[metadataKey: "service"] = "\(type(of: service).serviceName)"
        let configuration = RPCServerConfiguration(
            gatewayEndpoint: environment.gateway, instanceID: environment.instanceID,
            capacity: environment.capacity, heartbeatInterval: environment.heartbeatInterval,
            handlerExecution: handlerExecution, security: security)
        let server = RPCServer(service: service, configuration: configuration, logger: logger)
        let signalLogger = logger
        let signals = SignalHandler { count in
            if count == 1 {
                signalLogger.info("shutting down: draining calls in flight")
                server.shutdown()
            } else {
                exit(1)
            }
        }
        ParentWatch.start {
            signalLogger.warning("supervisor is gone; shutting down")
            server.shutdown()
        }
        logger.info("starting", metadata: ["gateway": "\(environment.gateway)", "instance": "\(configuration.instanceID)"])
        await willServe?(server)
        await server.run()
        await didStop?()
        withExtendedLifetime(signals) {}
        logger.info("stopped")
        exit(0)
    }

    /// swift-log to stderr at the given level; only executables call this. Calls after the
    /// first do nothing (a service's main may bootstrap before `run` does).
    public static func bootstrapLogging(level: String) {
        guard bootstrapped.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
    }
}

private let bootstrapped = Atomic<Bool>(false)

/// Turns SIGINT and SIGTERM into calls of `handler` with the count of signals so far.
public final class SignalHandler: @unchecked Sendable {
    // Dispatch sources are thread-safe; the array is never mutated after init.
    private let sources: [any DispatchSourceSignal]

    public init(_ handler: @escaping @Sendable (Int) -> Void) {
        let counter = SignalCounter()
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(counter.increment()) }
            source.resume()
            return source
        }
    }
}

private final class SignalCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}
