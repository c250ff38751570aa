public import Logging
public import AtomMetrics
internal import AtomProto

/// Serves one service through the gateway.
///
/// `run()` connects, registers, and runs every call in its own child task, concurrently, up to
/// the configured capacity (the gateway queues the rest). It returns after `shutdown()` has
/// drained the calls in flight, or at once when its task is cancelled.
public final class RPCServer: Sendable {
    public let configuration: RPCServerConfiguration
    /// This instance's latency recorder (RPC methods and domain operations).
    public let metrics = LatencyRecorder()
    private let reactor: ServerReactor
    private let incoming: IncomingCallQueue

    public init(
        service: any RPCService, configuration: RPCServerConfiguration,
        logger: Logger = Logger(label: "atom.rpc.server"), context: ZMQContext = .shared
    ) {
        self.configuration = configuration
        let incoming = IncomingCallQueue()
        self.incoming = incoming
        var logger = logger
        logger[metadataKey: "instance"] = "\(configuration.instanceID)"
        reactor = ServerReactor(
            configuration: configuration, service: service, incoming: incoming, logger: logger, context: context,
            metrics: metrics)
    }

    public func run() async {
        reactor.start()
        let reactor = self.reactor
        let executor: (any TaskExecutor)? =
            switch configuration.handlerExecution {
            case .sharedPool: nil
            case .reactorThread: reactor.executor
            }
        await withTaskCancellationHandler {
            await withTaskExecutorPreference(executor) {
                await withDiscardingTaskGroup { group in
                    while let batch = await incoming.next() {
                        for call in batch {
                            if let executor {
                                // On the reactor thread a handler starts at once, in this job,
                                // and runs until it first suspends: a handler that answers
                                // without suspending costs no task switch at all. Handlers
                                // there never block (see `HandlerExecution.reactorThread`), so
                                // the calls after it wait no longer than they would anyway.
                                group.addImmediateTask(executorPreference: executor) { await Self.serve(call, reactor: reactor) }
                            } else {
                                group.addTask { await Self.serve(call, reactor: reactor) }
                            }
                        }
                    }
                }
            }
        } onCancel: {
            reactor.submit(.stop)
        }
    }

    /// Graceful stop: the gateway stops routing here, calls in flight finish (up to the drain
    /// timeout), then `run()` returns.
    public func shutdown() {
        reactor.submit(.drain)
    }

    private static func serve(_ call: IncomingCall, reactor: ServerReactor) async {
        let id = call.id
        let clientCallID = call.clientCallID
        let control = call.control
        let emitter = StreamEmitter { bytes in
            guard !control.isOver else { return false }
            let body = RoutingCodec.encodeOKResponse(callID: clientCallID, payload: bytes, endOfStream: false)
            reactor.submit(.respond(id: id, envelope: body, final: false, handlerEnded: false))
            return true
        }
        let body: [UInt8] = await control.run {
            do {
                let payload = try await call.handler.body(call.payload, call.context, emitter)
                return RoutingCodec.encodeOKResponse(callID: clientCallID, payload: payload, endOfStream: true)
            } catch {
                let envelope = ResponseEnvelope(callId: clientCallID, status: RPCError.from(error).status, endOfStream: true)
                return (try? envelope.serializedBytes())
                    ?? (try? ResponseEnvelope(
                        callId: clientCallID, status: RPCStatus(code: .internal, message: "the response could not be encoded"),
                        endOfStream: true).serializedBytes())
                    ?? []
            }
        }
        // Dropped by the reactor if it already answered (deadline, cancel); either way it
        // learns that the handler has ended and its slot is free.
        reactor.submit(.respond(id: id, envelope: body, final: true, handlerEnded: true))
    }
}
