internal import CZeroMQ

/// The socket types this project uses.
public enum ZMQSocketType: Sendable {
    case dealer, router, req, rep, pair

    var rawValue: Int32 {
        switch self {
        case .pair: ZMQ_PAIR
        case .dealer: ZMQ_DEALER
        case .router: ZMQ_ROUTER
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }
}

/// One libzmq socket.
///
/// libzmq sockets are not thread-safe: a `ZMQSocket` must only be used from the thread that owns
/// it (a reactor thread). It is `@unchecked Sendable` only so that it can be handed to that
/// thread once, at start. It is closed with LINGER 0 on `close()` or deinit.
public final class ZMQSocket: @unchecked Sendable {
    private(set) var handle: UnsafeMutableRawPointer?
    private let context: ZMQContext
    /// Sends and receives so far: `ReactorWait` learns from it whether libzmq may have taken
    /// in a notification since the socket was last found idle.
    private(set) var operations: UInt64 = 0

    public init(_ type: ZMQSocketType, context: ZMQContext = .shared) throws {
        guard let handle = context.makeSocket(type.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        self.handle = handle
        self.context = context
        try setOption(ZMQ_LINGER, Int32(0))
    }

    deinit { close() }

    public func close() {
        if let handle {
            zmq_close(handle)
            self.handle = nil
        }
    }

    // MARK: Options

    func setOption(_ option: Int32, _ value: Int32) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    func setOption64(_ option: Int32, _ value: Int64) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(option))")
        }
    }

    func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQError.last("zmq_setsockopt(\(option))") }
    }

    /// Drop messages to unknown or vanished peers with EHOSTUNREACH instead of silently (ROUTER).
    public func setRouterMandatory(_ on: Bool) throws { try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0)) }
    /// Queue messages only on completed connections (DEALER): a send with no peer fails at once.
    public func setImmediate(_ on: Bool) throws { try setOption(ZMQ_IMMEDIATE, Int32(on ? 1 : 0)) }
    /// Peers that send a larger message are disconnected.
    public func setMaxMessageSize(_ bytes: Int) throws { try setOption64(ZMQ_MAXMSGSIZE, Int64(bytes)) }
    public func setHighWaterMarks(send: Int32, receive: Int32) throws {
        try setOption(ZMQ_SNDHWM, send)
        try setOption(ZMQ_RCVHWM, receive)
    }
    public func setReconnectInterval(milliseconds: Int32, max: Int32) throws {
        try setOption(ZMQ_RECONNECT_IVL, milliseconds)
        try setOption(ZMQ_RECONNECT_IVL_MAX, max)
    }
    /// ZMTP-level PING/PONG: catches dead links and frozen processes (not hung threads).
    public func setConnectionHeartbeat(intervalMs: Int32, timeoutMs: Int32) throws {
        try setOption(ZMQ_HEARTBEAT_IVL, intervalMs)
        try setOption(ZMQ_HEARTBEAT_TIMEOUT, timeoutMs)
        try setOption(ZMQ_HEARTBEAT_TTL, timeoutMs)
    }
    public func setHandshakeInterval(milliseconds: Int32) throws { try setOption(ZMQ_HANDSHAKE_IVL, milliseconds) }

    /// CurveZMQ client role: encrypt, and prove `keys` to a server known by its public key.
    public func setCurveClient(serverPublicKey: String, keys: CurveKeyPair) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverPublicKey.utf8))
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8))
    }

    /// CurveZMQ server role; clients are then authenticated by the ZAP handler of `domain`.
    public func setCurveServer(keys: CurveKeyPair, zapDomain: String) throws {
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8))
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(zapDomain.utf8))
    }

    /// A DEALER set up the way every client and service connects to the gateway: no queueing
    /// before the connection is up (a send then fails at once), bounded queues, reconnects
    /// with backoff, the frame size limit, ZMTP heartbeats, and the transport security.
    public static func gatewayDealer(context: ZMQContext, security: TransportSecurity) throws -> ZMQSocket {
        let socket = try ZMQSocket(.dealer, context: context)
        try socket.setImmediate(true)
        try socket.setHighWaterMarks(send: 10_000, receive: 10_000)
        try socket.setReconnectInterval(milliseconds: 100, max: 1_000)
        try socket.setMaxMessageSize(RPCLimits.maxFrameBytes)
        try socket.setConnectionHeartbeat(intervalMs: 1_000, timeoutMs: 3_000)
        try socket.apply(security)
        return socket
    }

    /// Applies a client's transport security (nothing for plaintext).
    public func apply(_ security: TransportSecurity) throws {
        if case .curve(let serverPublicKey, let keys) = security {
            try setCurveClient(serverPublicKey: serverPublicKey, keys: keys)
        }
    }

    /// Publishes this socket's handshake events on an inproc PAIR endpoint.
    func monitorHandshakes(_ endpoint: String) throws {
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        guard zmq_socket_monitor(handle, endpoint, events) == 0 else { throw ZMQError.last("zmq_socket_monitor") }
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
    }

    public func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    /// The endpoint actually bound, e.g. "tcp://127.0.0.1:43127" after binding "tcp://127.0.0.1:*".
    public func lastEndpoint() throws -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
            throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        }
        return String(nulTerminated: buffer)
    }

    // MARK: Messages

    /// Sends one multipart message. With `wait == false` a full queue throws EAGAIN instead of
    /// blocking. Frames of a multipart message are delivered all or none.
    public func send(_ frames: [[UInt8]], wait: Bool = false) throws {
        operations &+= 1
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = wait ? 0 : ZMQ_DONTWAIT
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let rc = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
            if rc < 0 { throw ZMQError.last("zmq_send") }
        }
    }

    /// Sends one multipart message to a ROUTER peer: the peer's identity frame, then `frames`
    /// (without building a new array per message).
    public func send(to identity: [UInt8], _ frames: [[UInt8]]) throws {
        // Counted once, by `send(frames)` below.
        let rc = identity.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, ZMQ_DONTWAIT | ZMQ_SNDMORE) }
        if rc < 0 { throw ZMQError.last("zmq_send") }
        try send(frames)
    }

    /// Runs libzmq's built-in broker (`zmq_proxy`) between two sockets until the context ends.
    /// Blocks the calling thread, which must own both sockets: the benchmark's reference for what a
    /// broker written in C costs on this machine.
    public static func runProxy(frontend: ZMQSocket, backend: ZMQSocket) {
        _ = zmq_proxy(frontend.handle, backend.handle, nil)
    }

    /// Receives one whole multipart message, or nil when none is waiting (non-blocking).
    public func receive() throws -> [[UInt8]]? {
        operations &+= 1
        var frames: [[UInt8]] = []
        frames.reserveCapacity(4)  // a routed message has four frames
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            let rc = zmq_msg_recv(&message, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let error = ZMQError.last("zmq_msg_recv")
                if frames.isEmpty && (error.isWouldBlock || error.isInterrupted) { return nil }
                throw error
            }
            let size = zmq_msg_size(&message)
            if size == 0 {
                frames.append([])
            } else {
                let data = zmq_msg_data(&message)!
                frames.append([UInt8](UnsafeRawBufferPointer(start: data, count: size)))
            }
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }
}
