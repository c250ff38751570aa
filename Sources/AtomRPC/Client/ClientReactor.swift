internal import AtomProto
internal import DequeModule
internal import Foundation
internal import Synchronization

/// The thread that owns a client's DEALER socket.
///
/// Async callers never touch the socket: they queue an `Operation` and wake the reactor through
/// its wake-up signal; the reactor sends, matches responses to calls by call id, fails calls whose
/// deadline passed, and resumes the callers. Blocking happens only here, in `ReactorWait`.
final class ClientReactor: @unchecked Sendable {
    enum Operation: ReactorOperation {
        case start(OutgoingCall)
        case cancel(UInt64)
        case stop
        case run(UnownedJob)
    }

    struct OutgoingCall: Sendable {
        let id: UInt64
        let service: String
        let method: String
        let frames: [[UInt8]]
        let deadline: ContinuousClock.Instant
        let sink: CallSink

        /// "service/method", for error messages.
        var label: String { "\(service)/\(method)" }
    }

    let endpoint: String
    private let inbox = ReactorInbox<Operation>()
    /// Runs tasks on this reactor's thread (see `RPCClient.executor`).
    let executor: ReactorExecutor
    private let connectTimeout: Duration
    private let context: ZMQContext
    private let stopped = Atomic<Bool>(false)
    private let security: TransportSecurity
    private let keepaliveInterval: Duration
    /// The encoded ClientKeepalive with no calls in flight.
    private let keepaliveFrames: [[UInt8]]
    private let keepaliveIntervalMs: UInt32

    // Reactor-thread state.
    private var socket: ZMQSocket?
    private var inFlight: [UInt64: OutgoingCall] = [:]
    private var unsent = Deque<(call: OutgoingCall, giveUpAt: ContinuousClock.Instant)>()
    private var deadlines = DeadlineQueue()
    private var thread: Thread?
    private var monitor: HandshakeMonitor?
    /// Why the gateway refuses this client (a failed CurveZMQ handshake), while it does.
    private var authFailure: String?
    private var lastKeepalive = ContinuousClock.now - .seconds(3600)
    /// The gateway process that last answered a keepalive.
    private var gatewayID: String?
    private var idlePoll: IdlePoll

    init(
        endpoint: String, context: ZMQContext, connectTimeout: Duration, security: TransportSecurity,
        keepaliveInterval: Duration, idlePollWindow: Duration
    ) throws {
        idlePoll = IdlePoll(window: idlePollWindow)
        self.endpoint = endpoint
        self.context = context
        self.connectTimeout = connectTimeout
        self.security = security
        self.keepaliveInterval = max(keepaliveInterval, .milliseconds(10))
        keepaliveIntervalMs = UInt32(clamping: Int64(self.keepaliveInterval / .milliseconds(1)))
        keepaliveFrames = WireFrame.frames(.keepalive, body: (try? ClientKeepalive(intervalMs: keepaliveIntervalMs).serializedBytes()) ?? [])
        let inbox = self.inbox
        executor = ReactorExecutor { job in inbox.submit(.run(job)) }
        let socket = try ZMQSocket.gatewayDealer(context: context, security: security)
        monitor = try HandshakeMonitor(watching: socket, context: context)
        try socket.connect(endpoint)
        self.socket = socket
        let thread = Thread(named: "atom-rpc-client", onMessagePath: true) { [self] in self.loop() }
        self.thread = thread
        thread.start()
    }

    func submit(_ operation: Operation) {
        // A caller running on this reactor's thread (see `RPCClient.executor`) sends at once,
        // before the next resumed caller runs, instead of after all of them.
        if case .start(let call) = operation, inbox.isOnReactorThread {
            start(call)
            return
        }
        if !inbox.submit(operation), case .start(let call) = operation {
            // The reactor has ended: no loop would ever answer this call.
            call.sink.deliver(.final(.failure(Self.closedError)))
        }
    }

    static let closedError = RPCError(.cancelled, "the RPC client was closed")

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        submit(.stop)
    }

    // MARK: Reactor thread

    private func loop() {
        guard let socket else { return }
        inbox.bindToCurrentThread()
        // The handshake monitor is not waited on: it is read on a timer while calls are pending
        // (handshakes are rare, and every descriptor waited on costs on every wait).
        let waiter: ReactorWait
        do {
            waiter = try ReactorWait(socket: socket, wake: inbox.wake)
        } catch {
            shutdown(RPCError(.internal, "the RPC client cannot wait for messages: \(error)"))
            return
        }
        var lastMonitorCheck = ContinuousClock.now
        var running = true
        var ending = Self.closedError
        while running {
            let readiness = waiter.wait(timeoutMs: inbox.isEmpty ? idlePoll.timeout(blocking: pollTimeoutMs(), callsInFlight: inFlight.count) : 0)
            if readiness.failed {
                ending = RPCError(.unavailable, "the RPC client's socket to \(endpoint) failed")
                break
            }
            // Everything a client receives or is handed is call traffic.
            idlePoll.polled(readable: readiness.socket || readiness.wake)
            if readiness.socket || readiness.wake { idlePoll.noteCallTraffic() }
            if readiness.socket { receiveAll(socket) }
            // Jobs run here may queue more work (a resumed caller sending its next call):
            // keep going while there is some, then poll.
            for _ in 0..<64 {
                let operations = inbox.take()
                if operations.isEmpty { break }
                for operation in operations {
                    switch operation {
                    case .start(let call): start(call)
                    case .cancel(let id): cancel(id)
                    case .stop: running = false
                    case .run(let job): executor.run(job)
                    }
                }
            }
            flushUnsent(socket)
            expireDeadlines()
            if !inFlight.isEmpty { keepAlive(socket) }
            let now = ContinuousClock.now
            if now - lastMonitorCheck >= .milliseconds(50) && !(unsent.isEmpty && inFlight.isEmpty) {
                lastMonitorCheck = now
                checkHandshake()
            }
        }
        shutdown(ending)
    }

    private func pollTimeoutMs() -> Int {
        let now = ContinuousClock.now
        var next = deadlines.earliest
        if !inFlight.isEmpty {
            let keepalive = lastKeepalive + keepaliveInterval
            next = next.map { min($0, keepalive) } ?? keepalive
        }
        if !unsent.isEmpty {
            // Not connected yet (or the peer's queue is full): try again soon.
            let retry = now + .milliseconds(2)
            next = next.map { min($0, retry) } ?? retry
        }
        guard let next else { return -1 }
        return max(0, Int(((next - now) / .milliseconds(1)).rounded(.up)))
    }

    private func checkHandshake() {
        switch monitor?.drain(gateway: endpoint, security: security) {
        case .succeeded: authFailure = nil
        case .failed(let message):
            authFailure = message
            // Nothing sent or waiting can get through: answer every call now.
            let error = RPCError.withReason(.unauthenticated, message, reason: "HANDSHAKE_FAILED")
            for call in inFlight.values { call.sink.deliver(.final(.failure(error))) }
            for entry in unsent { entry.call.sink.deliver(.final(.failure(error))) }
            inFlight.removeAll()
            unsent.removeAll()
        case nil: break
        }
    }

    private func start(_ call: OutgoingCall) {
        guard !call.sink.isFinished else { return }
        if let authFailure {
            call.sink.deliver(.final(.failure(RPCError.withReason(.unauthenticated, authFailure, reason: "HANDSHAKE_FAILED"))))
            return
        }
        if call.deadline <= .now {
            call.sink.deliver(.final(.failure(RPCError(.deadlineExceeded, "\(call.label): the deadline passed before the call was sent"))))
            return
        }
        deadlines.insert(call.deadline, id: call.id)
        if unsent.isEmpty, let socket, trySend(call, on: socket) { return }
        unsent.append((call, min(call.deadline, .now + connectTimeout)))
    }

    /// Tells the gateway this client is alive, at most once per interval: before a call when
    /// none was sent lately (so the gateway knows to watch this client), and while calls are
    /// in flight.
    private func keepAlive(_ socket: ZMQSocket) {
        let now = ContinuousClock.now
        guard now - lastKeepalive >= keepaliveInterval else { return }
        // Best effort: a full queue skips one, and the next is due an interval later. It lists the
        // calls in flight, so that the gateway can say which of them it has never heard of.
        let frames = inFlight.isEmpty
            ? keepaliveFrames
            : WireFrame.frames(.keepalive, body: (try? ClientKeepalive(intervalMs: keepaliveIntervalMs, callIds: Array(inFlight.keys)).serializedBytes()) ?? [])
        try? socket.send(frames)
        lastKeepalive = now
    }

    /// Sends a call; false when it must wait (no connection yet, or the queue is full).
    private func trySend(_ call: OutgoingCall, on socket: ZMQSocket) -> Bool {
        keepAlive(socket)
        do {
            try socket.send(call.frames)
            inFlight[call.id] = call
            return true
        } catch let error as ZMQError where error.isWouldBlock {
            return false
        } catch {
            call.sink.deliver(.final(.failure(RPCError(.unavailable, "\(call.label): could not send to the gateway at \(endpoint): \(error)"))))
            return true
        }
    }

    private func flushUnsent(_ socket: ZMQSocket) {
        let now = ContinuousClock.now
        while let (call, giveUpAt) = unsent.first {
            if call.sink.isFinished {
                unsent.removeFirst()
                continue
            }
            if trySend(call, on: socket) {
                unsent.removeFirst()
                continue
            }
            // Still not sendable: fail the calls that waited long enough, keep order for the rest.
            for entry in unsent where entry.giveUpAt <= now {
                entry.call.sink.deliver(.final(.failure(RPCError.withReason(
                    .unavailable,
                    "gateway not reachable at \(endpoint) (no connection within \(connectTimeout.secondsText)): is `atom up` running?",
                    reason: "GATEWAY_UNREACHABLE"))))
            }
            unsent.removeAll { $0.giveUpAt <= now }
            _ = giveUpAt
            return
        }
    }

    private func cancel(_ id: UInt64) {
        if let index = unsent.firstIndex(where: { $0.call.id == id }) {
            unsent.remove(at: index)
            return
        }
        guard inFlight.removeValue(forKey: id) != nil, let socket else { return }
        // Best effort: tell the gateway so the service stops working on it.
        if let body = try? CancelCall(callId: id).serializedBytes() {
            try? socket.send(WireFrame.frames(.cancel, body: body))
        }
    }

    private func receiveAll(_ socket: ZMQSocket) {
        while true {
            let frames: [[UInt8]]?
            do { frames = try socket.receive() } catch { return }
            guard let frames else { return }
            guard let (command, body) = WireFrame.parse(frames[...]) else { continue }  // garbage: dropped
            if command == .keepalive {
                gatewayAnswered(body)
                continue
            }
            guard command == .response else { continue }  // garbage: dropped
            // The common case (status OK) is read straight from the wire; other statuses are
            // decoded whole for their message and details.
            let callID: UInt64
            let endOfStream: Bool
            let payload: [UInt8]
            var failure: RPCError?
            if let ok = RoutingCodec.okResponse(body) {
                (callID, endOfStream, payload) = (ok.callID, ok.endOfStream, ok.payload)
            } else if let envelope = try? ResponseEnvelope(serializedBytes: body) {
                let status = envelope.status ?? RPCStatus()
                (callID, endOfStream, payload) = (envelope.callId, envelope.endOfStream, envelope.payload)
                if status.code != .ok { failure = RPCError(status: status) }
            } else {
                continue  // garbage: dropped
            }
            guard let call = inFlight[callID] else { continue }  // late: already answered
            if endOfStream {
                inFlight[callID] = nil
                call.sink.deliver(.final(failure.map { .failure($0) } ?? .success(payload)))
            } else {
                call.sink.deliver(.message(payload))
            }
        }
    }

    /// The gateway's answer to a keepalive: the calls it listed that the gateway has no record of
    /// will never be answered (sent to a gateway since restarted, or on a connection since
    /// replaced), so they end now with UNAVAILABLE, as gRPC ends the calls of a broken
    /// connection, instead of at their deadlines (an hour for some). A call answered meanwhile
    /// is gone from `inFlight` already: its answer came ahead of this one.
    private func gatewayAnswered(_ body: [UInt8]) {
        guard let answer = try? ClientKeepalive(serializedBytes: body), !answer.gatewayId.isEmpty else { return }
        let restarted = gatewayID.map { $0 != answer.gatewayId } ?? false
        gatewayID = answer.gatewayId
        for id in answer.unknownCallIds {
            guard let call = inFlight.removeValue(forKey: id) else { continue }
            let (why, reason) = restarted
                ? ("the gateway at \(endpoint) restarted while the call was in flight", "GATEWAY_RESTARTED")
                : ("the gateway at \(endpoint) no longer knows the call (it restarted, or the connection was replaced)", "CALL_LOST")
            call.sink.deliver(.final(.failure(RPCError.withReason(.unavailable, "\(call.label): \(why); it may or may not have run", reason: reason))))
        }
    }

    private func expireDeadlines() {
        let now = ContinuousClock.now
        // Client call ids are never reused: the id alone tells whether an entry's call is live.
        deadlines.compact(live: inFlight.count + unsent.count) { entry in
            inFlight[entry.id] != nil || unsent.contains { $0.call.id == entry.id }
        }
        deadlines.removeDue(at: now) { entry in
            let id = entry.id
            if let index = unsent.firstIndex(where: { $0.call.id == id }) {
                let call = unsent.remove(at: index).call
                call.sink.deliver(.final(.failure(RPCError.withReason(
                    .deadlineExceeded,
                    "\(call.label): deadline exceeded while waiting for the gateway at \(endpoint) (is `atom up` running?)",
                    reason: "GATEWAY_UNREACHABLE"))))
            } else if let call = inFlight[id] {
                cancel(id)
                call.sink.deliver(.final(.failure(RPCError(.deadlineExceeded, "\(call.label): deadline exceeded"))))
            }
        }
    }

    /// Ends every call with `error` (CANCELLED when the client was closed).
    private func shutdown(_ error: RPCError) {
        for call in inFlight.values { call.sink.deliver(.final(.failure(error))) }
        for entry in unsent { entry.call.sink.deliver(.final(.failure(error))) }
        inFlight.removeAll()
        unsent.removeAll()
        socket?.close()
        socket = nil
        // What was queued when the loop ended: calls fail too, jobs run elsewhere. Later
        // submissions are refused (see `submit`).
        for operation in inbox.close() {
            switch operation {
            case .start(let call): call.sink.deliver(.final(.failure(error)))
            case .run(let job): executor.handOver(job)
            case .cancel, .stop: break
            }
        }
    }
}
