internal import AtomProto
internal import AtomMetrics
internal import Foundation
internal import Logging
internal import Synchronization

/// A call the reactor hands to the async side for a handler to run.
struct IncomingCall: Sendable {
    /// The gateway's id for the call (the key of every exchange with the reactor).
    let id: UInt64
    /// The caller's own id, echoed in every response envelope.
    let clientCallID: UInt64
    let handler: RPCMethodHandler
    let payload: [UInt8]
    let context: RPCContext
    let control: CallControl
}

/// The thread that owns a service instance's DEALER socket to the gateway.
///
/// It registers (READY), heartbeats, re-registers when the gateway restarts or forgets it,
/// receives requests and hands them to the async side, enforces deadlines (sending
/// DEADLINE_EXCEEDED itself, so a handler that ignores cancellation cannot keep a caller
/// waiting), answers health checks inline, and sends what handlers produce.
final class ServerReactor: @unchecked Sendable {
    enum Operation: ReactorOperation {
        /// A response of call `id`; `handlerEnded` when the handler has returned (its final).
        case respond(id: UInt64, envelope: [UInt8], final: Bool, handlerEnded: Bool)
        case drain
        case stop
        case run(UnownedJob)
    }

    private struct ActiveCall {
        let control: CallControl
        let clientCallID: UInt64
        /// The operation its latency is recorded under: "rpc.<service>/<method>".
        let operation: String
        let receivedAt: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant?
        var finalSent = false
        var handlerEnded = false
    }

    let configuration: RPCServerConfiguration
    let serviceName: String
    /// Latency of every RPC method (recorded here, once, for every call) and of the domain
    /// operations handlers record.
    let metrics: LatencyRecorder
    private let handlers: [String: RPCMethodHandler]
    /// "rpc.<service>/<method>" per method, built once: the name each call's latency is recorded under.
    private let operations: [String: String]
    /// Calls received, handed over once per pass over the socket (one resumption of the
    /// accepting task per batch, not per call).
    private let incoming: IncomingCallQueue
    private let logger: Logger
    private let context: ZMQContext
    private let inbox = ReactorInbox<Operation>()
    /// Runs handler tasks on this reactor's thread when the server is configured to.
    let executor: ReactorExecutor
    private let started = ContinuousClock.now

    // Reactor-thread state.
    private var socket: ZMQSocket?
    private var calls: [UInt64: ActiveCall] = [:]
    /// Calls received in the current pass over the socket, not yet handed over.
    private var received: [IncomingCall] = []
    private var deadlines = DeadlineQueue()
    private var registered = false
    private var lastHeard = ContinuousClock.now
    private var lastSent = ContinuousClock.now - .seconds(3600)
    private var lastReadySent = ContinuousClock.now - .seconds(3600)
    private var monitor: HandshakeMonitor?
    private var lastHandshakeProblem: String?
    private var lastMonitorCheck = ContinuousClock.now
    private var draining = false
    /// After a drain: DISCONNECT was sent; waiting (until this instant) for the gateway's
    /// acknowledgement, which proves every response before it arrived (ZeroMQ keeps order).
    private var leavingUntil: ContinuousClock.Instant?
    private var leaveAcknowledged = false
    private var drainDeadline: ContinuousClock.Instant?

    init(
        configuration: RPCServerConfiguration, service: any RPCService,
        incoming: IncomingCallQueue, logger: Logger, context: ZMQContext,
        metrics: LatencyRecorder
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.serviceName = type(of: service).serviceName
        var handlers: [String: RPCMethodHandler] = [:]
        for handler in service.methodHandlers { handlers[handler.name] = handler }
        self.handlers = handlers
        operations = handlers.mapValues { "rpc.\(type(of: service).serviceName)/\($0.name)" }
        self.incoming = incoming
        self.logger = logger
        self.context = context
        let inbox = self.inbox
        executor = ReactorExecutor { job in inbox.submit(.run(job)) }
    }

    func start() {
        let thread = Thread(named: "atom-rpc-server", onMessagePath: true) { [self] in self.loop() }
        thread.start()
    }

    func submit(_ operation: Operation) {
        // A handler running on this reactor's thread (between its polls) answers at once: the
        // response leaves before the next call of the batch runs, as a REP socket would send
        // it, instead of after the whole batch. Everything else goes through the inbox.
        if case .respond(let id, let envelope, let final, let handlerEnded) = operation, inbox.isOnReactorThread {
            respond(id: id, envelope: envelope, final: final, handlerEnded: handlerEnded)
            return
        }
        inbox.submit(operation)
    }

    var heartbeatInterval: Duration { configuration.heartbeatInterval }

    // MARK: Reactor thread

    private func makeSocket() -> ZMQSocket? {
        do {
            let socket = try ZMQSocket.gatewayDealer(context: context, security: configuration.security)
            monitor?.socket.close()
            monitor = try HandshakeMonitor(watching: socket, context: context)
            try socket.connect(configuration.gatewayEndpoint)
            return socket
        } catch {
            logger.error("cannot connect to the gateway", metadata: ["endpoint": "\(configuration.gatewayEndpoint)", "error": "\(error)"])
            return nil
        }
    }

    private func loop() {
        socket = makeSocket()
        guard socket != nil else {
            finish()
            return
        }
        inbox.bindToCurrentThread()
        guard var waiter = makeWaiter(socket!) else {
            finish()
            return
        }
        var running = true
        sendReady()
        while running {
            let readiness = waiter.wait(timeoutMs: inbox.isEmpty ? pollTimeoutMs() : 0)
            if readiness.failed {
                // The process ends and its supervisor starts a new one: better than a reactor
                // that can neither wait nor serve.
                logger.error("the socket to the gateway failed; stopping")
                break
            }
            if readiness.socket, let socket { receiveAll(socket) }
            if !received.isEmpty {
                incoming.yield(received)
                received = []
            }
            // Handlers running on this thread queue their responses (and more jobs) here:
            // keep going while there is work, then poll.
            for _ in 0..<64 {
                let operations = inbox.take()
                if operations.isEmpty { break }
                for operation in operations {
                    switch operation {
                    case .respond(let id, let envelope, let final, let handlerEnded):
                        respond(id: id, envelope: envelope, final: final, handlerEnded: handlerEnded)
                    case .drain:
                        beginDrain()
                    case .stop:
                        running = false
                    case .run(let job):
                        executor.run(job)
                    }
                }
            }
            expireDeadlines()
            keepAlive()
            if let newSocket = reconnectIfGatewaySilent() {
                guard let newWaiter = makeWaiter(newSocket) else { break }
                waiter = newWaiter
            } else if socket == nil {
                break  // the reconnect could not make a socket (logged): stop, as above
            }
            if draining && leavingUntil == nil && (calls.isEmpty || (drainDeadline.map { ContinuousClock.now >= $0 } ?? false)) {
                // Answer what is left, say goodbye, and wait for the gateway to confirm before
                // closing: closing at once (LINGER 0) could drop the last responses.
                for id in Array(calls.keys) { stop(id, .shutdown) }
                send(.disconnect)
                leavingUntil = .now + .seconds(2)
            }
            if let leavingUntil, leaveAcknowledged || ContinuousClock.now >= leavingUntil || !registered {
                running = false
            }
        }
        finish()
    }

    /// Waits on the socket and the inbox's wake-up signal. (The handshake monitor is read on a
    /// timer, not waited on: see `keepAlive`.)
    private func makeWaiter(_ socket: ZMQSocket) -> ReactorWait? {
        do {
            return try ReactorWait(socket: socket, wake: inbox.wake)
        } catch {
            logger.error("cannot wait for messages from the gateway", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// A refused handshake is logged once per distinct reason; libzmq keeps retrying.
    private func checkHandshake() {
        switch monitor?.drain(gateway: configuration.gatewayEndpoint, security: configuration.security) {
        case .succeeded:
            lastHandshakeProblem = nil
        case .failed(let message):
            if message != lastHandshakeProblem { logger.error("cannot register: \(message)") }
            lastHandshakeProblem = message
        case nil:
            break
        }
    }

    private func pollTimeoutMs() -> Int {
        let now = ContinuousClock.now
        var next = (registered ? lastSent : lastReadySent) + heartbeatInterval
        if let earliest = deadlines.earliest { next = min(next, earliest) }
        if let drainDeadline { next = min(next, drainDeadline) }
        if let leavingUntil { next = min(next, leavingUntil) }
        if registered { next = min(next, lastHeard + heartbeatInterval * 3) }
        return max(0, Int(((next - now) / .milliseconds(1)).rounded(.up)))
    }

    private func send(_ command: WireCommand, _ body: [UInt8]? = nil) {
        guard let socket else { return }
        do {
            try socket.send(WireFrame.frames(command, body: body))
            lastSent = .now
        } catch {
            // EAGAIN: not connected (or the gateway is not reading). Heartbeats and READY are
            // retried on the next tick; responses are lost, and the gateway fails the call.
        }
    }

    private func sendReady() {
        let ready = WorkerReady(
            service: serviceName, instanceId: configuration.instanceID,
            methods: handlers.keys.sorted(), capacity: UInt32(clamping: configuration.capacity),
            heartbeatMs: UInt32(clamping: Int64(heartbeatInterval / .milliseconds(1))),
            version: configuration.version, pid: HostInfo.pid, host: HostInfo.hostname)
        lastReadySent = .now
        if let body = try? ready.serializedBytes() { send(.ready, body) }
    }

    private func keepAlive() {
        let now = ContinuousClock.now
        if now - lastMonitorCheck >= .milliseconds(100) {
            lastMonitorCheck = now
            checkHandshake()
        }
        if !registered {
            if now - lastReadySent >= heartbeatInterval { sendReady() }
        } else if now - lastSent >= heartbeatInterval {
            sendHeartbeat()
        }
    }

    private func sendHeartbeat() {
        let heartbeat = WorkerHeartbeat(inflight: UInt32(clamping: inflight), draining: draining)
        if let body = try? heartbeat.serializedBytes() { send(.heartbeat, body) }
    }

    private var inflight: Int { calls.values.count { !$0.handlerEnded } }

    /// After three silent intervals the gateway is presumed gone (restarted, or the link is
    /// dead): drop the socket and its stale queue, connect afresh and register again.
    private func reconnectIfGatewaySilent() -> ZMQSocket? {
        guard registered, ContinuousClock.now - lastHeard > heartbeatInterval * 3 else { return nil }
        logger.warning("gateway silent for three heartbeats; reconnecting", metadata: ["endpoint": "\(configuration.gatewayEndpoint)"])
        registered = false
        socket?.close()
        socket = makeSocket()
        lastHeard = .now
        sendReady()
        return socket
    }

    private func receiveAll(_ socket: ZMQSocket) {
        while true {
            let frames: [[UInt8]]?
            do { frames = try socket.receive() } catch { return }
            guard let frames else { return }
            if let (command, route, body) = WireFrame.parseRouted(frames[...]), command == .request {
                lastHeard = .now
                registered = true
                handleRequest(route, body)
                continue
            }
            guard let (command, body) = WireFrame.parse(frames[...]) else {
                logger.debug("dropped a malformed message from the gateway")
                continue
            }
            lastHeard = .now
            switch command {
            case .heartbeat:
                if !registered {
                    registered = true
                    logger.info("registered with the gateway", metadata: ["endpoint": "\(configuration.gatewayEndpoint)", "instance": "\(configuration.instanceID)"])
                }
            case .disconnect:
                if leavingUntil != nil {
                    // The gateway acknowledges our DISCONNECT: everything sent before it arrived.
                    leaveAcknowledged = true
                } else {
                    // The gateway does not know us (it restarted): register again.
                    registered = false
                    sendReady()
                }
            case .request:
                logger.debug("dropped a request without a route frame")
            case .cancel:
                if let cancel = try? CancelCall(serializedBytes: body) { stop(cancel.callId, .cancelled) }
            case .response, .ready, .keepalive:
                logger.debug("dropped an unexpected \(command) from the gateway")
            }
        }
    }

    private func handleRequest(_ route: RouteHeader, _ body: [UInt8]) {
        let id = route.callId
        guard let request = RoutingCodec.request(body) else {
            logger.warning("dropped an undecodable request envelope")
            sendFinal(id, 0, .failure(RPCError(.invalidArgument, "the request envelope is not valid protobuf")))
            return
        }
        let head = request.head
        let clientCallID = head.callID
        guard calls[id] == nil else { return }  // duplicate delivery
        let now = ContinuousClock.now
        let deadline = route.timeoutMs == 0 ? nil : now + .milliseconds(Int64(route.timeoutMs))
        var label: String { "\(head.service)/\(head.method)" }

        if head.service == HealthClientName.service && head.method == HealthClientName.check {
            let response = HealthCheckResponse(
                status: draining ? .notServing : .serving, instanceId: configuration.instanceID,
                uptimeMs: UInt64(max(0, (now - started) / .milliseconds(1))), inflight: UInt32(clamping: inflight))
            sendFinal(id, clientCallID, .success((try? response.serializedBytes()) ?? []))
            return
        }
        if head.service == MetricsCollectName.service && head.method == MetricsCollectName.collect {
            var response = CollectMetricsResponse(instanceId: configuration.instanceID)
            for (operation, histogram) in metrics.snapshot().sorted(by: { $0.key < $1.key }) {
                let buckets = HistogramBuckets(histogram).buckets.map { HistogramBucket(valueNs: $0.value, count: $0.count) }
                response.operations.append(OperationHistogram(operation: operation, buckets: buckets))
            }
            sendFinal(id, clientCallID, .success((try? response.serializedBytes()) ?? []))
            return
        }
        guard head.service == serviceName else {
            sendFinal(id, clientCallID, .failure(RPCError(.unimplemented, "\(label): this instance serves \(serviceName), not \(head.service)")))
            return
        }
        guard let handler = handlers[head.method], let operation = operations[head.method] else {
            sendFinal(id, clientCallID, .failure(RPCError(.unimplemented, "\(label): no such method; \(serviceName) has \(handlers.keys.sorted().joined(separator: ", "))")))
            return
        }
        if draining {
            sendFinal(id, clientCallID, .failure(RPCError.withReason(.unavailable, "\(label): instance \(configuration.instanceID) is shutting down", reason: "DRAINING")))
            return
        }
        let control = CallControl()
        calls[id] = ActiveCall(
            control: control, clientCallID: clientCallID, operation: operation, receivedAt: now, deadline: deadline)
        if let deadline { deadlines.insert(deadline, id: id) }
        let context = RPCContext(
            service: head.service, method: head.method, deadline: deadline,
            metadata: request.metadata, instanceID: configuration.instanceID, metrics: metrics)
        received.append(IncomingCall(
            id: id, clientCallID: clientCallID, handler: handler, payload: request.payload, context: context, control: control))
    }

    /// Sends a response of gateway call `id` (its envelope carries the caller's own id).
    private func sendRouted(_ id: UInt64, final: Bool, _ envelope: [UInt8]) {
        guard let socket else { return }
        do {
            try socket.send(WireFrame.routedFrames(.response, route: RouteHeader(callId: id, endOfStream: final), body: envelope))
            lastSent = .now
        } catch {
            // Not connected: the gateway fails the call (it knows the instance is gone).
        }
    }

    private func sendFinal(_ id: UInt64, _ clientCallID: UInt64, _ result: Result<[UInt8], RPCError>) {
        var envelope = ResponseEnvelope(callId: clientCallID, endOfStream: true)
        switch result {
        case .success(let payload):
            envelope.payload = payload
            envelope.status = RPCStatus(code: .ok)
        case .failure(let error):
            envelope.status = error.status
        }
        if let body = try? envelope.serializedBytes() { sendRouted(id, final: true, body) }
    }

    private func respond(id: UInt64, envelope: [UInt8], final: Bool, handlerEnded: Bool) {
        guard var call = calls[id] else { return }
        if !call.finalSent {
            sendRouted(id, final: final, envelope)
            if final {
                call.finalSent = true
                call.control.markOver()
                metrics.record(call.operation, ContinuousClock.now - call.receivedAt)
            }
        }
        if handlerEnded { call.handlerEnded = true }
        if call.finalSent && call.handlerEnded {
            calls[id] = nil
        } else {
            calls[id] = call
        }
    }

    /// Ends a call early: the caller gets the status now, the handler is told to stop.
    private func stop(_ id: UInt64, _ reason: CallStopReason) {
        guard var call = calls[id] else { return }
        if !call.finalSent {
            let error: RPCError =
                switch reason {
                case .deadline: RPCError(.deadlineExceeded, "deadline exceeded in \(serviceName) (instance \(configuration.instanceID))")
                case .cancelled: RPCError(.cancelled, "cancelled by the caller")
                case .shutdown: RPCError.withReason(.unavailable, "instance \(configuration.instanceID) shut down before the call finished", reason: "DRAINING")
                }
            sendFinal(id, call.clientCallID, .failure(error))
            call.finalSent = true
            call.control.markOver()
            metrics.record(call.operation, ContinuousClock.now - call.receivedAt)
            calls[id] = call
        }
        call.control.stop()
    }

    private func expireDeadlines() {
        let now = ContinuousClock.now
        deadlines.compact(live: calls.count) { isPending($0) }
        deadlines.removeDue(at: now) { entry in
            // Entries of calls already answered are left behind (see DeadlineQueue).
            if isPending(entry) { stop(entry.id, .deadline) }
        }
    }

    /// Whether a deadline entry belongs to a call still waiting for its final response: the
    /// same id and the same deadline (the gateway reuses ids after it restarts).
    private func isPending(_ entry: DeadlineEntry) -> Bool {
        guard let call = calls[entry.id] else { return false }
        return !call.finalSent && call.deadline == entry.deadline
    }

    private func beginDrain() {
        guard !draining else { return }
        draining = true
        drainDeadline = .now + configuration.drainTimeout
        sendHeartbeat()
        logger.info("draining", metadata: ["inflight": "\(inflight)"])
    }

    private func finish() {
        for id in Array(calls.keys) { stop(id, .shutdown) }
        if leavingUntil == nil { send(.disconnect) }
        incoming.finish()
        socket?.close()
        socket = nil
        monitor?.socket.close()
        // Handler tasks that prefer this thread finish on the shared pool from now on; their
        // responses have nowhere to go.
        for operation in inbox.close() {
            if case .run(let job) = operation { executor.handOver(job) }
        }
    }
}

/// Names of the metrics service every instance's runtime answers.
enum MetricsCollectName {
    static let service = "atom.v1.Metrics"
    static let collect = "Collect"
}

/// Names of the health service every instance's runtime answers.
enum HealthClientName {
    static let service = "atom.v1.Health"
    static let check = "Check"
}
