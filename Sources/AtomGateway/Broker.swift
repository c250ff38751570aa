internal import AtomProto
internal import AtomMetrics
internal import Histogram
internal import AtomRPC
internal import DequeModule
internal import Foundation
internal import Logging
internal import Synchronization

/// The gateway's routing state machine, confined to one thread that owns the ROUTER socket.
///
/// Peers are told apart by what they send: an instance announces itself with READY; anything
/// that sends REQUEST or CANCEL is a client. Calls are re-numbered with gateway call ids so
/// that ids chosen by different clients never collide at an instance.
final class Broker: @unchecked Sendable {
    typealias Identity = [UInt8]

    /// A class: routing reads several instances per call, and copying a struct of strings and
    /// sets each time was a measurable share of the gateway's CPU.
    final class Instance {
        let identity: Identity
        let service: String
        let instanceID: String
        let methods: Set<String>
        let capacity: Int
        let heartbeat: Duration
        let version: String
        let pid: UInt32
        let host: String
        let connectedAt: ContinuousClock.Instant
        var lastSeen: ContinuousClock.Instant
        var lastHeartbeatSent: ContinuousClock.Instant
        /// Calls dispatched and not yet finished, as the gateway counts them.
        var inflight = 0
        /// Calls the instance says it is running (handlers that outlive their deadline count).
        var reportedInflight = 0
        var draining = false
        var callsTotal: UInt64 = 0

        var load: Int { max(inflight, reportedInflight) }
        var hasCredit: Bool { !draining && load < capacity }

        init(
            identity: Identity, service: String, instanceID: String, methods: Set<String>, capacity: Int,
            heartbeat: Duration, version: String, pid: UInt32, host: String, connectedAt: ContinuousClock.Instant
        ) {
            self.identity = identity
            self.service = service
            self.instanceID = instanceID
            self.methods = methods
            self.capacity = capacity
            self.heartbeat = heartbeat
            self.version = version
            self.pid = pid
            self.host = host
            self.connectedAt = connectedAt
            lastSeen = connectedAt
            lastHeartbeatSent = connectedAt
        }
    }

    struct ServiceEntry {
        var instances: [Identity] = []
        var queue = Deque<QueuedCall>()
        var roundRobin = 0
    }

    struct QueuedCall {
        let client: Identity
        /// What routing needs of the envelope (the rest is never decoded here).
        let head: RoutingCodec.RequestHead
        /// The envelope as the client sent it: forwarded as is.
        let body: [UInt8]
        let deadline: ContinuousClock.Instant?
        /// When a call for a service without live instances gives up.
        let noInstanceGiveUp: ContinuousClock.Instant
    }

    enum InFlightKind {
        case client
        /// A request the gateway sent to one instance as part of a fan-out.
        case probe(fanOut: UInt64)
    }

    struct InFlight {
        let client: Identity
        let clientCallID: UInt64
        let instance: Identity
        let deadline: ContinuousClock.Instant?
        let kind: InFlightKind
        let service: String
        let method: String
        var clientAnswered = false

        /// "service/method", for error messages (built only when one is sent).
        var label: String { "\(service)/\(method)" }
    }

    /// A client that sends keepalives while its calls are in flight (see `ClientKeepalive`).
    struct WatchedClient {
        var lastSeen: ContinuousClock.Instant
        var interval: Duration
    }

    struct ClientCallKey: Hashable {
        let client: Identity
        let callID: UInt64
    }

    enum FanOutKind {
        case health(GatewayHealthRequest)
        case metrics
    }

    /// A call the gateway answers by asking every instance (health, metrics).
    struct FanOut {
        let client: Identity
        let clientCallID: UInt64
        let kind: FanOutKind
        let deadline: ContinuousClock.Instant
        var pending: [UInt64: Identity] = [:]
        /// Each answering instance's response payload and how long it took.
        var answers: [Identity: ([UInt8], Duration)] = [:]
        /// Instances asked, with their service and id (kept even if they vanish meanwhile).
        var asked: [Identity: (service: String, instanceID: String)] = [:]
        let startedAt: ContinuousClock.Instant
    }

    let configuration: GatewayConfiguration
    let boundEndpoint: String
    private let logger: Logger
    private let socket: ZMQSocket
    private let wake = WakeSignal()
    private let stopRequested = Atomic<Bool>(false)
    private let startedAt = ContinuousClock.now
    private let zap: ZAPHandler?

    // Thread-confined state.
    private var instances: [Identity: Instance] = [:]
    private var services: [String: ServiceEntry] = [:]
    private var inFlight: [UInt64: InFlight] = [:]
    private var clientCalls: [ClientCallKey: UInt64] = [:]
    private var fanOuts: [UInt64: FanOut] = [:]
    private var watchedClients: [Identity: WatchedClient] = [:]
    private var nextCallID: UInt64 = 1
    private var droppedFrames: UInt64 = 0
    /// Names this gateway process in its answers to client keepalives (a client tells a restart
    /// from a replaced connection by it).
    private let gatewayID = UUID().uuidString
    /// Polling after call traffic instead of sleeping (`ATOM_IDLE_POLL_US`).
    private var idlePoll: IdlePoll

    init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        // At any load: its yields let its I/O thread run on its CPU (see IdlePoll).
        idlePoll = IdlePoll(window: configuration.idlePollWindow, maxCallsInFlight: nil)
        let socket = try ZMQSocket(.router)
        try socket.setRouterMandatory(true)
        try socket.setHighWaterMarks(send: 50_000, receive: 50_000)
        try socket.setMaxMessageSize(RPCLimits.maxFrameBytes)
        try socket.setConnectionHeartbeat(intervalMs: 1_000, timeoutMs: 3_000)
        try socket.setHandshakeInterval(milliseconds: 5_000)
        if let curve = configuration.curve {
            // The gateway's own key may connect too (its Prometheus endpoint is a client).
            var authorized = curve.authorizedKeys
            authorized[curve.keys.publicKey] = "gateway"
            zap = try ZAPHandler(authorizedKeys: authorized, logger: logger)
            try socket.setCurveServer(keys: curve.keys, zapDomain: "atom")
        } else {
            zap = nil
        }
        var bound: String?
        for endpoint in [configuration.endpoint] + (configuration.localEndpoint.map { [$0] } ?? []) {
            if endpoint.hasPrefix("ipc://") {
                // Its directory is private to the user: only they reach the gateway through it.
                let directory = (String(endpoint.dropFirst("ipc://".count)) as NSString).deletingLastPathComponent
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            do {
                try socket.bind(endpoint)
            } catch {
                throw RPCError(.unavailable, "the gateway cannot listen on \(endpoint): \(error)")
            }
            // The main endpoint as bound (a "tcp://host:*" gets its port here).
            if bound == nil { bound = try? socket.lastEndpoint() }
        }
        self.socket = socket
        boundEndpoint = bound ?? configuration.endpoint
    }

    func start(onExit: @escaping @Sendable () -> Void) {
        let thread = Thread(named: "atom-gateway", onMessagePath: true) { [self] in
            self.loop()
            onExit()
        }
        thread.start()
    }

    func stop() {
        stopRequested.store(true, ordering: .relaxed)
        wake.signal()
    }

    // MARK: Loop

    private func loop() {
        var metadata: Logger.Metadata = ["endpoint": "\(boundEndpoint)"]
        if let local = configuration.localEndpoint { metadata["local_endpoint"] = "\(local)" }
        logger.info("gateway listening", metadata: metadata)
        let waiter: ReactorWait
        do {
            waiter = try ReactorWait(socket: socket, wake: wake)
        } catch {
            logger.critical("the gateway cannot wait for messages", metadata: ["error": "\(error)"])
            socket.close()
            return
        }
        var nextHousekeeping = ContinuousClock.now
        while !stopRequested.load(ordering: .relaxed) {
            let now = ContinuousClock.now
            let timeout = max(0, Int(((nextHousekeeping - now) / .milliseconds(1)).rounded(.up)))
            let readiness = waiter.wait(timeoutMs: idlePoll.timeout(blocking: timeout, callsInFlight: inFlight.count))
            if readiness.failed {
                logger.critical("the gateway's socket failed; stopping")
                break
            }
            idlePoll.polled(readable: readiness.socket || readiness.wake)
            if readiness.socket { receiveAll() }
            if ContinuousClock.now >= nextHousekeeping {
                housekeeping()
                nextHousekeeping = ContinuousClock.now + housekeepingInterval
            }
        }
        for (id, _) in inFlight { answerClient(id, .failure(RPCError(.unavailable, "the gateway is shutting down"))) }
        socket.close()
        zap?.stop()
        logger.info("gateway stopped")
    }

    private var housekeepingInterval: Duration {
        min(configuration.heartbeatInterval / 4, .milliseconds(50))
    }

    private func receiveAll() {
        while true {
            let frames: [[UInt8]]?
            do { frames = try socket.receive() } catch { return }
            guard let frames else { return }
            if frames.count == 4, let (command, route, body) = WireFrame.parseRouted(frames[1...]), command == .response {
                idlePoll.noteCallTraffic()
                instanceResponse(frames[0], route, body)
                continue
            }
            guard frames.count >= 2, let (command, body) = WireFrame.parse(frames[1...]) else {
                droppedFrames += 1
                logger.debug("dropped a malformed message", metadata: ["frames": "\(frames.count)"])
                continue
            }
            let peer = frames[0]
            switch command {
            case .request:
                idlePoll.noteCallTraffic()
                clientRequest(peer, body)
            case .cancel:
                idlePoll.noteCallTraffic()
                clientCancel(peer, body)
            case .ready: instanceReady(peer, body)
            case .heartbeat: instanceHeartbeat(peer, body)
            case .response:
                // Responses from instances carry a route frame; one without is malformed.
                droppedFrames += 1
            case .disconnect: instanceLeft(peer)
            case .keepalive: clientKeepalive(peer, body)
            }
        }
    }

    // MARK: Sending

    /// Sends to a peer; false when it is gone (EHOSTUNREACH) or its queue is full (EAGAIN).
    @discardableResult
    private func send(to peer: Identity, _ command: WireCommand, _ body: [UInt8]? = nil) -> Bool {
        do {
            try socket.send(to: peer, WireFrame.frames(command, body: body))
            return true
        } catch {
            return false
        }
    }

    /// Sends prepared frames to a peer; false when it is gone or its queue is full.
    @discardableResult
    private func send(to peer: Identity, _ frames: [[UInt8]]) -> Bool {
        do {
            try socket.send(to: peer, frames)
            return true
        } catch {
            return false
        }
    }

    private func reply(to client: Identity, callID: UInt64, _ result: Result<[UInt8], RPCError>) {
        var envelope = ResponseEnvelope(callId: callID, endOfStream: true)
        switch result {
        case .success(let payload):
            envelope.status = RPCStatus(code: .ok)
            envelope.payload = payload
        case .failure(let error):
            envelope.status = RPCStatus(code: error.code, message: error.message, details: error.details)
        }
        if let body = try? envelope.serializedBytes() { send(to: client, .response, body) }
    }

    // MARK: Clients

    private func clientRequest(_ client: Identity, _ body: [UInt8]) {
        guard let head = RoutingCodec.requestHead(body) else {
            droppedFrames += 1
            logger.debug("dropped an undecodable request envelope")
            return
        }
        let now = ContinuousClock.now
        let deadline = head.timeoutMs == 0 ? nil : now + .milliseconds(Int64(head.timeoutMs))
        guard !head.service.isEmpty, !head.method.isEmpty else {
            reply(to: client, callID: head.callID, .failure(RPCError(.invalidArgument, "a call must name a service and a method (got \"\(head.service)/\(head.method)\")")))
            return
        }
        switch head.service {
        case GatewayNames.gatewayService, GatewayNames.healthService:
            // The gateway's own methods need the whole envelope (their payload).
            guard let envelope = try? RequestEnvelope(serializedBytes: body) else {
                droppedFrames += 1
                logger.debug("dropped an undecodable request envelope")
                return
            }
            if head.service == GatewayNames.gatewayService {
                serveGateway(client, envelope, deadline: deadline)
            } else {
                serveHealthCheck(client, envelope)
            }
            return
        default:
            break
        }
        let call = QueuedCall(
            client: client, head: head, body: body, deadline: deadline,
            noInstanceGiveUp: min(deadline ?? .now + configuration.noInstanceWait, now + configuration.noInstanceWait))
        route(call)
    }

    /// Dispatches a call, or queues it when every instance is busy or none is registered yet.
    private func route(_ call: QueuedCall) {
        let service = call.head.service
        var entry = services[service] ?? ServiceEntry()
        if let unknown = unknownMethod(call, entry) {
            reply(to: call.client, callID: call.head.callID, .failure(unknown))
            return
        }
        if entry.queue.isEmpty, dispatch(call, entry: &entry) {
            services[service] = entry
            return
        }
        guard entry.queue.count < configuration.maxQueuedPerService else {
            let retry = RetryInfo(retryDelayMs: 100)
            let details = (try? retry.serializedBytes()).map { [StatusDetail(type: RetryInfo.protoName, value: $0)] } ?? []
            reply(to: call.client, callID: call.head.callID, .failure(RPCError(
                .resourceExhausted, "\(service)/\(call.head.method): \(entry.queue.count) calls already wait for \(service); try again later",
                details: details)))
            return
        }
        entry.queue.append(call)
        services[service] = entry
    }

    /// Sends the call to the least-loaded live instance with credit. False if there is none.
    private func dispatch(_ call: QueuedCall, entry: inout ServiceEntry) -> Bool {
        let now = ContinuousClock.now
        var refused: [Identity] = []
        while true {
            // Least loaded relative to capacity; ties go round robin so equal instances share.
            entry.roundRobin &+= 1
            let count = entry.instances.count
            guard count > 0 else { return false }
            var chosen: Instance?
            for step in 0..<count {
                guard let instance = instances[entry.instances[(entry.roundRobin + step) % count]],
                      instance.hasCredit, instance.methods.contains(call.head.method),
                      refused.isEmpty || !refused.contains(instance.identity)
                else { continue }
                if let best = chosen, best.load * instance.capacity <= instance.load * best.capacity { continue }
                chosen = instance
            }
            guard let chosen else { return false }
            let id = nextCallID
            nextCallID &+= 1
            var route = RouteHeader(callId: id)
            if let deadline = call.deadline {
                let left = deadline - now
                guard left > .zero else {
                    reply(to: call.client, callID: call.head.callID, .failure(RPCError(.deadlineExceeded, "\(call.head.service)/\(call.head.method): deadline exceeded before an instance was free")))
                    return true
                }
                route.timeoutMs = UInt32(clamping: max(1, Int64((left / .milliseconds(1)).rounded(.down))))
            }
            if send(to: chosen.identity, WireFrame.routedFrames(.request, route: route, body: call.body)) {
                chosen.inflight += 1
                chosen.callsTotal += 1
                inFlight[id] = InFlight(
                    client: call.client, clientCallID: call.head.callID, instance: chosen.identity,
                    deadline: call.deadline, kind: .client, service: call.head.service, method: call.head.method)
                clientCalls[ClientCallKey(client: call.client, callID: call.head.callID)] = id
                return true
            }
            // Gone (EHOSTUNREACH) or its queue is full: try the next one.
            refused.append(chosen.identity)
        }
    }

    /// UNIMPLEMENTED when the service has live instances and none of them serves the method.
    private func unknownMethod(_ call: QueuedCall, _ entry: ServiceEntry) -> RPCError? {
        var anyLive = false
        for identity in entry.instances {
            guard let instance = instances[identity] else { continue }
            if instance.methods.contains(call.head.method) { return nil }
            anyLive = true
        }
        guard anyLive else { return nil }
        let methods = Set(entry.instances.compactMap { instances[$0] }.flatMap(\.methods)).sorted().joined(separator: ", ")
        return RPCError(.unimplemented, "\(call.head.service)/\(call.head.method): no such method; \(call.head.service) has \(methods)")
    }

    private func clientKeepalive(_ client: Identity, _ body: [UInt8]) {
        guard let keepalive = try? ClientKeepalive(serializedBytes: body) else {
            droppedFrames += 1
            return
        }
        // At least 50 ms, like instances' heartbeats: a zero interval would declare every client dead.
        let interval = Duration.milliseconds(Int64(max(keepalive.intervalMs, 50)))
        watchedClients[client] = WatchedClient(lastSeen: .now, interval: interval)
        let unknown = unknownCalls(keepalive.callIds, of: client)
        if let answer = try? ClientKeepalive(intervalMs: keepalive.intervalMs, gatewayId: gatewayID, unknownCallIds: unknown).serializedBytes() {
            _ = send(to: client, .keepalive, answer)
        }
    }

    /// Those of a client's call ids this gateway has no record of: not at an instance, not
    /// queued, not in a fan-out. Every call the client sent before the keepalive on this
    /// connection has been routed by now (or answered, and the answer is ahead of this one).
    private func unknownCalls(_ ids: [UInt64], of client: Identity) -> [UInt64] {
        let candidates = ids.filter { clientCalls[ClientCallKey(client: client, callID: $0)] == nil }
        guard !candidates.isEmpty else { return [] }
        var known = Set<UInt64>()
        for fanOut in fanOuts.values where fanOut.client == client { known.insert(fanOut.clientCallID) }
        for entry in services.values {
            for call in entry.queue where call.client == client { known.insert(call.head.callID) }
        }
        return candidates.filter { !known.contains($0) }
    }

    /// A client that stopped sending keepalives is gone (killed, or its host is): its calls are
    /// cancelled at the instances and dropped from the queues, as gRPC cancels the calls of a
    /// closed connection, instead of running on until their deadlines for nobody.
    private func forgetSilentClients(now: ContinuousClock.Instant) {
        for (client, watched) in watchedClients where now - watched.lastSeen > watched.interval * 3 {
            watchedClients[client] = nil
            var cancelled = 0
            for (id, call) in inFlight where call.client == client {
                guard case .client = call.kind else { continue }
                cancelAtInstance(id)
                cancelled += 1
            }
            for (name, var entry) in services where entry.queue.contains(where: { $0.client == client }) {
                cancelled += entry.queue.count { $0.client == client }
                entry.queue.removeAll { $0.client == client }
                services[name] = entry
            }
            if cancelled > 0 {
                logger.warning("client silent for three keepalive intervals; cancelled its calls", metadata: [
                    "calls": "\(cancelled)", "interval_ms": "\(watched.interval / .milliseconds(1))",
                ])
            }
        }
    }

    private func clientCancel(_ client: Identity, _ body: [UInt8]) {
        guard let cancel = try? CancelCall(serializedBytes: body) else { return }
        if let id = clientCalls[ClientCallKey(client: client, callID: cancel.callId)] {
            cancelAtInstance(id)
            return
        }
        for (name, var entry) in services {
            if let index = entry.queue.firstIndex(where: { $0.client == client && $0.head.callID == cancel.callId }) {
                entry.queue.remove(at: index)
                services[name] = entry
                return
            }
        }
    }

    /// Tells the instance running gateway call `id` to stop; the client is not answered (it gave
    /// up, or is gone). The call stays in flight until the instance's final response, so that
    /// the instance's load stays right; that response is dropped.
    private func cancelAtInstance(_ id: UInt64) {
        guard let call = inFlight[id] else { return }
        clientCalls[ClientCallKey(client: call.client, callID: call.clientCallID)] = nil
        inFlight[id]?.clientAnswered = true
        if let body = try? CancelCall(callId: id).serializedBytes() { send(to: call.instance, .cancel, body) }
    }

    /// Ends a client call that is in flight at an instance (the instance may still answer
    /// later; that answer is then dropped).
    private func answerClient(_ id: UInt64, _ result: Result<[UInt8], RPCError>) {
        guard let call = inFlight[id], !call.clientAnswered else { return }
        inFlight[id]?.clientAnswered = true
        clientCalls[ClientCallKey(client: call.client, callID: call.clientCallID)] = nil
        if case .client = call.kind {
            reply(to: call.client, callID: call.clientCallID, result)
        }
    }

    // MARK: Instances

    private func instanceReady(_ peer: Identity, _ body: [UInt8]) {
        guard let ready = try? WorkerReady(serializedBytes: body), !ready.service.isEmpty, !ready.instanceId.isEmpty,
              ready.capacity > 0
        else {
            droppedFrames += 1
            logger.warning("rejected an invalid READY")
            send(to: peer, .disconnect)
            return
        }
        guard ![GatewayNames.gatewayService, GatewayNames.healthService, GatewayNames.metricsService].contains(ready.service) else {
            logger.warning("rejected an instance claiming a reserved service name", metadata: ["service": "\(ready.service)"])
            send(to: peer, .disconnect)
            return
        }
        // The same instance on a new connection replaces the old one (it reconnected).
        for (identity, existing) in instances where existing.instanceID == ready.instanceId && identity != peer {
            removeInstance(identity, reason: "re-registered on a new connection")
        }
        if instances[peer] != nil { removeInstance(peer, reason: "registered again") }
        let now = ContinuousClock.now
        let heartbeat = Duration.milliseconds(Int64(max(ready.heartbeatMs, 50)))
        instances[peer] = Instance(
            identity: peer, service: ready.service, instanceID: ready.instanceId, methods: Set(ready.methods),
            capacity: Int(ready.capacity), heartbeat: heartbeat, version: ready.version, pid: ready.pid,
            host: ready.host, connectedAt: now)
        services[ready.service, default: ServiceEntry()].instances.append(peer)
        send(to: peer, .heartbeat)  // acknowledges the registration
        logger.info("instance registered", metadata: [
            "service": "\(ready.service)", "instance": "\(ready.instanceId)", "capacity": "\(ready.capacity)",
        ])
        drainQueue(ready.service)
    }

    private func instanceHeartbeat(_ peer: Identity, _ body: [UInt8]) {
        guard instances[peer] != nil else {
            // Not registered here (the gateway restarted): ask it to register again.
            send(to: peer, .disconnect)
            return
        }
        instances[peer]?.lastSeen = .now
        if let heartbeat = try? WorkerHeartbeat(serializedBytes: body) {
            let wasDraining = instances[peer]?.draining ?? false
            instances[peer]?.reportedInflight = Int(heartbeat.inflight)
            instances[peer]?.draining = heartbeat.draining
            if heartbeat.draining && !wasDraining, let instance = instances[peer] {
                logger.info("instance draining", metadata: ["service": "\(instance.service)", "instance": "\(instance.instanceID)"])
            }
            if let service = instances[peer]?.service { drainQueue(service) }
        }
    }

    private func instanceResponse(_ peer: Identity, _ route: RouteHeader, _ body: [UInt8]) {
        guard let instance = instances[peer] else {
            send(to: peer, .disconnect)
            return
        }
        instance.lastSeen = .now
        let id = route.callId
        guard let call = inFlight[id], call.instance == peer else { return }  // late or foreign
        if route.endOfStream {
            inFlight[id] = nil
            if case .client = call.kind {
                clientCalls[ClientCallKey(client: call.client, callID: call.clientCallID)] = nil
                instance.inflight -= 1
            }
        }
        switch call.kind {
        case .client:
            // The envelope already carries the client's call id: forwarded byte for byte.
            if !call.clientAnswered { send(to: call.client, .response, body) }
            if route.endOfStream { drainQueue(instance.service) }
        case .probe(let fanOutID):
            guard route.endOfStream else { return }
            let envelope = try? ResponseEnvelope(serializedBytes: body)
            let answer = envelope.flatMap { ($0.status?.code ?? .ok) == .ok ? $0.payload : nil }
            recordProbe(fanOutID, callID: id, instance: peer, answer: answer)
        }
    }

    private func instanceLeft(_ peer: Identity) {
        removeInstance(peer, reason: "disconnected")
        // Acknowledges the goodbye: the instance may close now, every response it sent before
        // has arrived (ZeroMQ keeps the order of one connection).
        send(to: peer, .disconnect)
    }

    /// Forgets an instance; its calls in flight end with UNAVAILABLE (they may or may not
    /// have run, so they are not retried blindly).
    private func removeInstance(_ identity: Identity, reason: String) {
        guard let instance = instances.removeValue(forKey: identity) else { return }
        services[instance.service]?.instances.removeAll { $0 == identity }
        var failed = 0
        for (id, call) in inFlight where call.instance == identity {
            switch call.kind {
            case .client:
                answerClient(id, .failure(RPCError.withReason(
                    .unavailable,
                    "\(call.label): instance \(instance.instanceID) of \(instance.service) \(reason) before answering; the call may or may not have run",
                    reason: "INSTANCE_LOST")))
                failed += 1
            case .probe(let fanOutID):
                recordProbe(fanOutID, callID: id, instance: identity, answer: nil)
            }
            inFlight[id] = nil
        }
        logger.info("instance removed", metadata: [
            "service": "\(instance.service)", "instance": "\(instance.instanceID)", "reason": "\(reason)",
            "failed_calls": "\(failed)",
        ])
        drainQueue(instance.service)
    }

    /// Dispatches queued calls of a service while instances have credit.
    private func drainQueue(_ service: String) {
        guard var entry = services[service], !entry.queue.isEmpty else { return }
        while let call = entry.queue.first {
            if let unknown = unknownMethod(call, entry) {
                entry.queue.removeFirst()
                reply(to: call.client, callID: call.head.callID, .failure(unknown))
                continue
            }
            guard dispatch(call, entry: &entry) else { break }
            entry.queue.removeFirst()
        }
        services[service] = entry
    }

    // MARK: Housekeeping

    private func housekeeping() {
        let now = ContinuousClock.now
        forgetSilentClients(now: now)
        // Dead instances: silent for three of their heartbeat intervals.
        for (identity, instance) in instances where now - instance.lastSeen > instance.heartbeat * 3 {
            removeInstance(identity, reason: "stopped answering heartbeats")
        }
        for (identity, instance) in instances where now - instance.lastHeartbeatSent >= min(instance.heartbeat, configuration.heartbeatInterval) {
            if send(to: identity, .heartbeat) {
                instances[identity]?.lastHeartbeatSent = now
            } else {
                removeInstance(identity, reason: "is unreachable")
            }
        }
        // Queued calls that ran out of time.
        for (name, var entry) in services where !entry.queue.isEmpty {
            let hasLive = !entry.instances.isEmpty
            var kept = Deque<QueuedCall>()
            for call in entry.queue {
                let label = "\(name)/\(call.head.method)"
                if let deadline = call.deadline, deadline <= now {
                    reply(to: call.client, callID: call.head.callID, .failure(RPCError(.deadlineExceeded, "\(label): deadline exceeded while waiting for a free instance of \(name)")))
                } else if !hasLive && call.noInstanceGiveUp <= now {
                    reply(to: call.client, callID: call.head.callID, .failure(RPCError.withReason(
                        .unavailable, "\(label): no instance of \(name) is registered with the gateway\(knownServicesHint(except: name))",
                        reason: "NO_INSTANCE")))
                } else {
                    kept.append(call)
                }
            }
            entry.queue = kept
            services[name] = entry
        }
        // Calls in flight past their deadline: answer the client (the instance's own deadline
        // handling frees its slot; if it never does, heartbeats catch it).
        let grace = Duration.milliseconds(50)
        for (id, call) in inFlight where !call.clientAnswered {
            if let deadline = call.deadline, now > deadline + grace {
                answerClient(id, .failure(RPCError(.deadlineExceeded, "\(call.label): deadline exceeded")))
            }
        }
        for id in Array(fanOuts.keys) where fanOuts[id].map({ now >= $0.deadline }) ?? false {
            completeFanOut(id)
        }
    }

    private func knownServicesHint(except name: String) -> String {
        let known = services.filter { $0.key != name && !$0.value.instances.isEmpty }.keys.sorted()
        return known.isEmpty ? "" : " (registered: \(known.joined(separator: ", ")))"
    }

    // MARK: The gateway's own services

    private func serveHealthCheck(_ client: Identity, _ envelope: RequestEnvelope) {
        guard envelope.method == GatewayNames.check else {
            reply(to: client, callID: envelope.callId, .failure(RPCError(.unimplemented, "\(GatewayNames.healthService)/\(envelope.method): no such method; it has Check")))
            return
        }
        guard let request = try? HealthCheckRequest(serializedBytes: envelope.payload) else {
            reply(to: client, callID: envelope.callId, .failure(RPCError(.invalidArgument, "the request is not a valid \(HealthCheckRequest.protoName)")))
            return
        }
        var response = HealthCheckResponse(instanceId: "gateway", uptimeMs: uptimeMs)
        if request.service.isEmpty {
            response.status = .serving
        } else if let entry = services[request.service] {
            response.status = entry.instances.contains { instances[$0].map { !$0.draining } ?? false } ? .serving : .notServing
        } else {
            response.status = .serviceUnknown
        }
        reply(to: client, callID: envelope.callId, .success((try? response.serializedBytes()) ?? []))
    }

    private var uptimeMs: UInt64 { UInt64(max(0, (ContinuousClock.now - startedAt) / .milliseconds(1))) }

    private func serveGateway(_ client: Identity, _ envelope: RequestEnvelope, deadline: ContinuousClock.Instant?) {
        let label = "\(GatewayNames.gatewayService)/\(envelope.method)"
        switch envelope.method {
        case GatewayNames.listServices:
            guard (try? ListServicesRequest(serializedBytes: envelope.payload)) != nil else {
                reply(to: client, callID: envelope.callId, .failure(RPCError(.invalidArgument, "\(label): the request is not a valid \(ListServicesRequest.protoName)")))
                return
            }
            reply(to: client, callID: envelope.callId, .success((try? listServices().serializedBytes()) ?? []))
        case GatewayNames.health:
            guard let request = try? GatewayHealthRequest(serializedBytes: envelope.payload) else {
                reply(to: client, callID: envelope.callId, .failure(RPCError(.invalidArgument, "\(label): the request is not a valid \(GatewayHealthRequest.protoName)")))
                return
            }
            startFanOut(client, envelope.callId, .health(request), clientDeadline: deadline)
        case GatewayNames.metrics:
            guard (try? GatewayMetricsRequest(serializedBytes: envelope.payload)) != nil else {
                reply(to: client, callID: envelope.callId, .failure(RPCError(.invalidArgument, "\(label): the request is not a valid \(GatewayMetricsRequest.protoName)")))
                return
            }
            startFanOut(client, envelope.callId, .metrics, clientDeadline: deadline)
        default:
            reply(to: client, callID: envelope.callId, .failure(RPCError(.unimplemented, "\(label): no such method; \(GatewayNames.gatewayService) has Health, ListServices, Metrics")))
        }
    }

    private func listServices() -> ListServicesResponse {
        let now = ContinuousClock.now
        var response = ListServicesResponse()
        for name in services.keys.sorted() {
            let entry = services[name]!
            let live = entry.instances.compactMap { instances[$0] }
            var info = ServiceInfo(name: name, methods: Set(live.flatMap(\.methods)).sorted(), queued: UInt32(clamping: entry.queue.count))
            info.instances = live.sorted { $0.instanceID < $1.instanceID }.map { instance in
                InstanceInfo(
                    instanceId: instance.instanceID, capacity: UInt32(clamping: instance.capacity),
                    inflight: UInt32(clamping: instance.load), pid: instance.pid, host: instance.host,
                    version: instance.version,
                    connectedMs: UInt64(max(0, (now - instance.connectedAt) / .milliseconds(1))),
                    lastSeenMsAgo: UInt64(max(0, (now - instance.lastSeen) / .milliseconds(1))),
                    callsTotal: instance.callsTotal)
            }
            response.services.append(info)
        }
        return response
    }

    private func startFanOut(_ client: Identity, _ callID: UInt64, _ kind: FanOutKind, clientDeadline: ContinuousClock.Instant?) {
        let now = ContinuousClock.now
        var deadline = now + configuration.healthTimeout
        if let clientDeadline { deadline = min(deadline, clientDeadline - .milliseconds(5)) }
        let fanOutID = nextCallID
        nextCallID &+= 1
        var fanOut = FanOut(client: client, clientCallID: callID, kind: kind, deadline: deadline, startedAt: now)
        let selected: [String]
        switch kind {
        case .health(let request): selected = request.service.isEmpty ? Array(services.keys) : [request.service]
        case .metrics: selected = Array(services.keys)
        }
        let timeoutMs = UInt32(clamping: max(1, Int64(((deadline - now) / .milliseconds(1)).rounded(.down))))
        for name in selected {
            for identity in services[name]?.instances ?? [] {
                guard let instance = instances[identity] else { continue }
                let id = nextCallID
                nextCallID &+= 1
                let probe: RequestEnvelope
                switch kind {
                case .health:
                    probe = RequestEnvelope(
                        service: GatewayNames.healthService, method: GatewayNames.check, callId: id, timeoutMs: timeoutMs,
                        payload: (try? HealthCheckRequest(service: name).serializedBytes()) ?? [])
                case .metrics:
                    probe = RequestEnvelope(
                        service: GatewayNames.metricsService, method: GatewayNames.collect, callId: id, timeoutMs: timeoutMs)
                }
                fanOut.asked[identity] = (instance.service, instance.instanceID)
                guard let body = try? probe.serializedBytes(),
                      send(to: identity, WireFrame.routedFrames(.request, route: RouteHeader(callId: id, timeoutMs: timeoutMs), body: body))
                else { continue }
                fanOut.pending[id] = identity
                inFlight[id] = InFlight(
                    client: client, clientCallID: callID, instance: identity, deadline: deadline,
                    kind: .probe(fanOut: fanOutID), service: probe.service, method: probe.method)
            }
        }
        fanOuts[fanOutID] = fanOut
        if fanOut.pending.isEmpty { completeFanOut(fanOutID) }
    }

    private func recordProbe(_ fanOutID: UInt64, callID: UInt64, instance: Identity, answer: [UInt8]?) {
        guard var fanOut = fanOuts[fanOutID], fanOut.pending.removeValue(forKey: callID) != nil else { return }
        if let answer { fanOut.answers[instance] = (answer, ContinuousClock.now - fanOut.startedAt) }
        fanOuts[fanOutID] = fanOut
        if fanOut.pending.isEmpty { completeFanOut(fanOutID) }
    }

    private func completeFanOut(_ id: UInt64) {
        guard let fanOut = fanOuts.removeValue(forKey: id) else { return }
        for callID in fanOut.pending.keys { inFlight[callID] = nil }
        switch fanOut.kind {
        case .health(let request): completeHealth(fanOut, request)
        case .metrics: completeMetrics(fanOut)
        }
    }

    private func completeMetrics(_ fanOut: FanOut) {
        let policy = configuration.performancePolicy
        var merged: [String: Histogram<UInt64>] = [:]
        var response = GatewayMetricsResponse()
        for (identity, who) in fanOut.asked.sorted(by: { ($0.value.service, $0.value.instanceID) < ($1.value.service, $1.value.instanceID) }) {
            guard let (payload, _) = fanOut.answers[identity], let collected = try? CollectMetricsResponse(serializedBytes: payload) else {
                response.missing.append("\(who.service)/\(who.instanceID)")
                continue
            }
            var instance = InstanceOperations(service: who.service, instanceId: who.instanceID)
            for operation in collected.operations {
                var histogram = LatencyRecorder.makeHistogram()
                let buckets = HistogramBuckets(buckets: operation.buckets.map { ($0.valueNs, $0.count) })
                buckets.add(to: &histogram)
                buckets.add(to: &merged[operation.operation, default: LatencyRecorder.makeHistogram()])
                instance.operations.append(Self.summary(operation.operation, histogram, policy))
            }
            response.instances.append(instance)
        }
        for (operation, histogram) in merged.sorted(by: { $0.key < $1.key }) {
            let summary = Self.summary(operation, histogram, policy)
            response.operations.append(summary)
            switch summary.status {
            case PerformancePolicy.Status.overBudget.rawValue:
                response.alerts.append(MetricsAlert(
                    operation: operation, kind: summary.status,
                    message: String(format: "p99 %.1f us is over the budget of %.1f us", summary.p99Us, summary.budgetUs)))
            case PerformancePolicy.Status.regression.rawValue:
                let check = policy.checkRegression(operation, current: summary.p99Us, samples: summary.count)
                response.alerts.append(MetricsAlert(operation: operation, kind: summary.status, message: check.reason))
            default:
                break
            }
        }
        reply(to: fanOut.client, callID: fanOut.clientCallID, .success((try? response.serializedBytes()) ?? []))
    }

    static func summary(_ operation: String, _ histogram: Histogram<UInt64>, _ policy: PerformancePolicy) -> OperationSummary {
        let figures = LatencySummary(histogram)
        return OperationSummary(
            operation: operation, count: figures.count, meanUs: figures.mean, minUs: figures.min, maxUs: figures.max,
            p50Us: figures.p50, p95Us: figures.p95, p99Us: figures.p99, p999Us: figures.p999,
            budgetUs: policy.budgets[operation] ?? 0, status: policy.status(operation, figures).rawValue,
            baselineP99Us: policy.baselines[operation] ?? 0)
    }

    private func completeHealth(_ fanOut: FanOut, _ request: GatewayHealthRequest) {
        let waitedMs = Int64(configuration.healthTimeout / .milliseconds(1))
        var response = GatewayHealthResponse(
            gatewayStatus: .serving, gatewayUptimeMs: uptimeMs, gatewayVersion: AtomVersion.current,
            droppedMessages: droppedFrames)
        if !request.service.isEmpty && services[request.service] == nil {
            response.services = [ServiceHealth(service: request.service, status: .serviceUnknown)]
        } else {
            let names = request.service.isEmpty ? services.keys.sorted() : [request.service]
            for name in names {
                var health = ServiceHealth(service: name, status: .notServing)
                for identity in services[name]?.instances ?? [] {
                    guard let instance = instances[identity] else { continue }
                    var item = InstanceHealth(
                        instanceId: instance.instanceID, status: .notServing, inflight: UInt32(clamping: instance.load),
                        capacity: UInt32(clamping: instance.capacity), version: instance.version, pid: instance.pid,
                        host: instance.host)
                    if let (payload, latency) = fanOut.answers[identity], let answer = try? HealthCheckResponse(serializedBytes: payload) {
                        item.status = answer.status
                        item.uptimeMs = answer.uptimeMs
                        item.latencyUs = UInt32(clamping: Int64(latency / .microseconds(1)))
                        if answer.status != .serving { item.message = "instance reports \(answer.status.protoName)" }
                    } else {
                        item.message = "no answer within \(waitedMs) ms"
                    }
                    health.instances.append(item)
                }
                health.instances.sort { $0.instanceId < $1.instanceId }
                if health.instances.contains(where: { $0.status == .serving }) { health.status = .serving }
                response.services.append(health)
            }
        }
        reply(to: fanOut.client, callID: fanOut.clientCallID, .success((try? response.serializedBytes()) ?? []))
    }
}

enum GatewayNames {
    static let gatewayService = "atom.v1.Gateway"
    static let health = "Health"
    static let listServices = "ListServices"
    static let metrics = "Metrics"
    static let metricsService = "atom.v1.Metrics"
    static let collect = "Collect"
    static let healthService = "atom.v1.Health"
    static let check = "Check"
}
