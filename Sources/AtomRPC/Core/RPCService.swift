public import AtomProto

/// A service implementation: its name on the wire and a handler per method.
///
/// The generated `XService` protocols (in AtomAPI) refine this and build `methodHandlers` from
/// typed methods, so handler code never touches bytes.
public protocol RPCService: Sendable {
    static var serviceName: String { get }
    var methodHandlers: [RPCMethodHandler] { get }
}

/// One method of a service, type-erased to bytes for the runtime.
public struct RPCMethodHandler: Sendable {
    public let name: String
    public let isServerStreaming: Bool
    /// Decodes the request, runs the handler, returns the final response payload. Stream
    /// messages go out through the `emit` function as they are produced.
    let body: @Sendable (_ payload: [UInt8], _ context: RPCContext, _ emit: StreamEmitter) async throws -> [UInt8]

    public static func unary<Request: ProtoMessage, Response: ProtoMessage>(
        _ name: String,
        _ handler: @escaping @Sendable (Request, RPCContext) async throws -> Response
    ) -> RPCMethodHandler {
        RPCMethodHandler(name: name, isServerStreaming: false) { payload, context, _ in
            let request = try decodeRequest(Request.self, payload, context)
            let response = try await handler(request, context)
            return try encodeResponse(response, context)
        }
    }

    /// A unary method whose handler returns its response already encoded as `Response` (from a
    /// cache of encoded responses, say): the runtime sends the bytes as they are, after the same
    /// size check as any response.
    public static func unaryEncoded<Request: ProtoMessage, Response: ProtoMessage>(
        _ name: String, responseType: Response.Type,
        _ handler: @escaping @Sendable (Request, RPCContext) async throws -> [UInt8]
    ) -> RPCMethodHandler {
        RPCMethodHandler(name: name, isServerStreaming: false) { payload, context, _ in
            let request = try decodeRequest(Request.self, payload, context)
            return try checkSize(try await handler(request, context), context)
        }
    }

    public static func serverStreaming<Request: ProtoMessage, Response: ProtoMessage>(
        _ name: String,
        _ handler: @escaping @Sendable (Request, RPCStreamWriter<Response>, RPCContext) async throws -> Void
    ) -> RPCMethodHandler {
        RPCMethodHandler(name: name, isServerStreaming: true) { payload, context, emit in
            let request = try decodeRequest(Request.self, payload, context)
            try await handler(request, RPCStreamWriter(emit: emit, context: context), context)
            return []
        }
    }

    private static func decodeRequest<Request: ProtoMessage>(
        _ type: Request.Type, _ payload: [UInt8], _ context: RPCContext
    ) throws -> Request {
        do {
            return try Request(serializedBytes: payload)
        } catch {
            throw RPCError(
                .invalidArgument,
                "\(context.service)/\(context.method): the request is not a valid \(Request.protoName): \(error)")
        }
    }

    static func encodeResponse<Response: ProtoMessage>(_ response: Response, _ context: RPCContext) throws -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = try response.serializedBytes()
        } catch {
            throw RPCError(
                .internal, "\(context.service)/\(context.method): the response could not be encoded: \(error)")
        }
        return try checkSize(bytes, context)
    }

    private static func checkSize(_ bytes: [UInt8], _ context: RPCContext) throws -> [UInt8] {
        guard bytes.count <= RPCLimits.maxPayloadBytes else {
            throw RPCError(
                .resourceExhausted,
                "\(context.service)/\(context.method): the response is \(bytes.count) bytes, over the \(RPCLimits.maxPayloadBytes)-byte limit")
        }
        return bytes
    }
}

/// Sends stream messages of one call to the runtime. Returns false once the call is over
/// (finished, cancelled or past its deadline).
struct StreamEmitter: Sendable {
    let send: @Sendable ([UInt8]) -> Bool
}

/// Writes the messages of a server-streaming call.
public struct RPCStreamWriter<Response: ProtoMessage>: Sendable {
    let emit: StreamEmitter
    let context: RPCContext

    /// Sends one message. Throws CANCELLED when the caller is gone or the deadline has passed,
    /// so a handler stops producing.
    public func send(_ message: Response) async throws {
        let bytes = try RPCMethodHandler.encodeResponse(message, context)
        guard emit.send(bytes) else {
            throw RPCError(.cancelled, "\(context.service)/\(context.method): the call is over")
        }
        await Task.yield()
    }
}
