public import AtomProto
internal import Foundation
internal import Synchronization

/// Calls services through the gateway.
///
/// One client holds one connection (a DEALER socket on its own reactor thread) and carries any
/// number of concurrent calls over it, matched by call id. Every call ends by its deadline: with
/// the service's answer, or with DEADLINE_EXCEEDED / UNAVAILABLE when no answer can come.
/// Calls are typed through the generated clients in AtomAPI (`EchoClient(rpc).echo(...)`).
public final class RPCClient: Sendable {
    public let endpoint: String
    /// Sent as the `caller` metadata of every call.
    public let name: String
    private let reactor: ClientReactor
    private let nextCallID = Atomic<UInt64>(1)

    /// Connects to the gateway at `endpoint` (connection happens in the background; calls made
    /// before it completes wait up to `connectTimeout`, then fail with UNAVAILABLE).
    ///
    /// While calls are in flight the client tells the gateway every `keepaliveInterval` that it is
    /// alive; if this process dies, the gateway cancels its calls after three silent intervals.
    public init(
        endpoint: String, name: String = "atom-client", context: ZMQContext = .shared,
        connectTimeout: Duration = .seconds(1), security: TransportSecurity = .plaintext,
        keepaliveInterval: Duration = .seconds(1), idlePollWindow: Duration = IdlePoll.defaultWindow
    ) throws {
        self.endpoint = endpoint
        self.name = name
        do {
            reactor = try ClientReactor(
                endpoint: endpoint, context: context, connectTimeout: connectTimeout, security: security,
                keepaliveInterval: keepaliveInterval, idlePollWindow: idlePollWindow)
        } catch {
            throw RPCError(.invalidArgument, "cannot connect to \(endpoint): \(error)")
        }
    }

    /// A client configured from the environment: `ATOM_GATEWAY`, the CurveZMQ keys, and
    /// `ATOM_HEARTBEAT_MS` as the keepalive interval, `ATOM_IDLE_POLL_US`.
    public convenience init(environment: AtomEnvironment, name: String) throws {
        try self.init(
            endpoint: environment.gateway, name: name, security: try environment.clientSecurity(),
            keepaliveInterval: environment.heartbeatInterval, idlePollWindow: environment.idlePollWindow)
    }

    deinit { reactor.stop() }

    /// An executor that runs tasks on this client's reactor thread. Callers that make many
    /// calls and never block can run there (`withTaskExecutorPreference(client.executor)`):
    /// sending and resuming then cost no thread hop.
    public var executor: any TaskExecutor { reactor.executor }

    /// Stops the client: calls still in flight end with CANCELLED.
    public func close() { reactor.stop() }

    /// A unary call. Prefer the generated typed clients, which call this.
    public func unary<Request: ProtoMessage, Response: ProtoMessage>(
        service: String, method: String, request: Request, responseType: Response.Type,
        options: CallOptions = CallOptions()
    ) async throws -> Response {
        // Labels are built only for an error message: an interpolated string per call is a heap
        // allocation on the hot path.
        let (id, call) = try prepare(service: service, method: method, request: request, options: options)
        let sink = call.sink
        let payload = try await withTaskCancellationHandler {
            // Unsafe (unchecked) continuation: CallSink resumes it exactly once by construction, and
            // the checked variant costs an allocation per call.
            try await withUnsafeThrowingContinuation { continuation in
                sink.install(unary: continuation)
                reactor.submit(.start(call))
            }
        } onCancel: {
            sink.deliver(.final(.failure(RPCError(.cancelled, "\(service)/\(method): cancelled by the caller"))))
            reactor.submit(.cancel(id))
        }
        return try Self.decode(Response.self, payload, label: call.label)
    }

    /// A server-streaming call: the stream yields each message and ends with the call's status
    /// (throwing an RPCError unless OK). Ending the iteration early cancels the call.
    public func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        service: String, method: String, request: Request, responseType: Response.Type,
        options: CallOptions = CallOptions()
    ) -> RPCResponseStream<Response> {
        let label = "\(service)/\(method)"
        let (bytes, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        do {
            let (id, call) = try prepare(service: service, method: method, request: request, options: options)
            let reactor = self.reactor
            let sink = call.sink
            continuation.onTermination = { termination in
                if case .cancelled = termination {
                    sink.deliver(.final(.failure(RPCError(.cancelled, "\(label): cancelled by the caller"))))
                    reactor.submit(.cancel(id))
                }
            }
            sink.install(stream: continuation)
            reactor.submit(.start(call))
        } catch {
            continuation.finish(throwing: error)
        }
        return RPCResponseStream(bytes: bytes, label: label)
    }

    private func prepare<Request: ProtoMessage>(
        service: String, method: String, request: Request, options: CallOptions
    ) throws -> (UInt64, ClientReactor.OutgoingCall) {
        var label: String { "\(service)/\(method)" }
        let payload: [UInt8]
        do {
            payload = try request.serializedBytes()
        } catch {
            throw RPCError(.invalidArgument, "\(label): the request cannot be encoded: \(error)")
        }
        guard payload.count <= RPCLimits.maxPayloadBytes else {
            throw RPCError(
                .resourceExhausted,
                "\(label): the request is \(payload.count) bytes, over the \(RPCLimits.maxPayloadBytes)-byte limit")
        }
        guard options.timeout > .zero else {
            throw RPCError(.deadlineExceeded, "\(label): the deadline passed before the call was sent")
        }
        let id = nextCallID.wrappingAdd(1, ordering: .relaxed).oldValue
        var metadata = options.metadata
        if !metadata.contains(where: { $0.key == RPCMetadataKey.requestID }) {
            metadata.append(MetadataEntry(key: RPCMetadataKey.requestID, value: Self.newRequestID()))
        }
        if !metadata.contains(where: { $0.key == RPCMetadataKey.caller }) {
            metadata.append(MetadataEntry(key: RPCMetadataKey.caller, value: name))
        }
        let timeoutMs = UInt32(clamping: Int64((options.timeout / .milliseconds(1)).rounded(.up)))
        let body = RoutingCodec.encodeRequest(
            service: service, method: method, callID: id, timeoutMs: max(timeoutMs, 1), metadata: metadata, payload: payload)
        let call = ClientReactor.OutgoingCall(
            id: id, service: service, method: method, frames: WireFrame.frames(.request, body: body),
            deadline: .now + options.timeout, sink: CallSink())
        return (id, call)
    }

    static func decode<Response: ProtoMessage>(_ type: Response.Type, _ payload: [UInt8], label: @autoclosure () -> String) throws -> Response {
        do {
            return try Response(serializedBytes: payload)
        } catch {
            throw RPCError(.internal, "\(label()): the response is not a valid \(Response.protoName): \(error)")
        }
    }

    /// A request id unique across processes: a random per-process prefix and a counter
    /// (cheaper than a UUID per call).
    static func newRequestID() -> String {
        "\(requestIDPrefix)-\(requestCounter.wrappingAdd(1, ordering: .relaxed).oldValue)"
    }

    private static let requestIDPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private static let requestCounter = Atomic<UInt64>(1)
}

/// The messages of a server-streaming call, decoded. Throws the call's RPCError at the end
/// unless it finished with OK.
public struct RPCResponseStream<Response: ProtoMessage>: AsyncSequence, Sendable {
    public typealias Element = Response
    let bytes: AsyncThrowingStream<[UInt8], any Error>
    let label: String

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
        let label: String

        public mutating func next() async throws -> Response? {
            guard let payload = try await base.next() else { return nil }
            return try RPCClient.decode(Response.self, payload, label: label)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: bytes.makeAsyncIterator(), label: label)
    }
}
