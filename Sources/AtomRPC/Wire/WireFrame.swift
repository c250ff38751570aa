public import AtomProto

/// The frame layout every peer of the gateway speaks (ZeroMQ routing frames aside):
///
///     frame 0: [0xA7, command]      protocol marker and command byte
///     frame 1: protobuf body        (absent for bodiless commands)
///
/// Between the gateway and an instance, requests and responses carry a `RouteHeader` frame
/// before the envelope (`[0xA7, command] [RouteHeader] [envelope]`): the gateway's call id,
/// the time left and the end-of-stream flag travel there, so the gateway forwards envelopes
/// byte for byte instead of decoding and re-encoding them.
///
/// The RPC semantics live in the protobuf envelope, not in the framing, so any protobuf
/// implementation can talk to the services. A message that does not parse as this layout is
/// dropped and counted; it never reaches a handler.
public enum WireCommand: UInt8, Sendable, CaseIterable {
    /// Client -> gateway, gateway -> service: a RequestEnvelope.
    case request = 0x01
    /// Client -> gateway, gateway -> service: a CancelCall.
    case cancel = 0x02
    /// Service -> gateway, gateway -> client: a ResponseEnvelope (stream message or final).
    case response = 0x03
    /// Service -> gateway: a WorkerReady (register, or register again).
    case ready = 0x10
    /// Both ways between service and gateway: liveness (a WorkerHeartbeat from services, empty
    /// from the gateway).
    case heartbeat = 0x11
    /// Gateway -> service: "I do not know you, register again". Service -> gateway: "I am leaving".
    case disconnect = 0x12
    /// Client -> gateway, while the client has calls in flight: a ClientKeepalive. The gateway
    /// cancels the calls of a client that stops sending them (it was killed, or its host is gone).
    case keepalive = 0x13
}

public enum WireFrame {
    public static let marker: UInt8 = 0xA7

    /// The first frame of a command. Built once per command: every message starts with one,
    /// and a fresh two-byte array per message was an allocation on every hop of every call.
    public static func header(_ command: WireCommand) -> [UInt8] {
        switch command {
        case .request: requestHeader
        case .cancel: cancelHeader
        case .response: responseHeader
        case .ready: readyHeader
        case .heartbeat: heartbeatHeader
        case .disconnect: disconnectHeader
        case .keepalive: keepaliveHeader
        }
    }

    private static let requestHeader = [marker, WireCommand.request.rawValue]
    private static let cancelHeader = [marker, WireCommand.cancel.rawValue]
    private static let responseHeader = [marker, WireCommand.response.rawValue]
    private static let readyHeader = [marker, WireCommand.ready.rawValue]
    private static let heartbeatHeader = [marker, WireCommand.heartbeat.rawValue]
    private static let disconnectHeader = [marker, WireCommand.disconnect.rawValue]
    private static let keepaliveHeader = [marker, WireCommand.keepalive.rawValue]

    /// Frames for one command.
    public static func frames(_ command: WireCommand, body: [UInt8]? = nil) -> [[UInt8]] {
        if let body { return [header(command), body] }
        return [header(command)]
    }

    /// Frames for a request or response between the gateway and an instance.
    public static func routedFrames(_ command: WireCommand, route: RouteHeader, body: [UInt8]) -> [[UInt8]] {
        [header(command), RoutingCodec.encode(route), body]
    }

    /// Parses `[0xA7, command] [RouteHeader] [body]`. Returns nil for anything malformed.
    public static func parseRouted(_ frames: ArraySlice<[UInt8]>) -> (command: WireCommand, route: RouteHeader, body: [UInt8])? {
        guard frames.count == 3, let first = frames.first, first.count == 2, first[0] == marker,
              let command = WireCommand(rawValue: first[1]),
              let route = RoutingCodec.routeHeader(frames[frames.startIndex + 1])
        else { return nil }
        return (command, route, frames[frames.startIndex + 2])
    }

    /// Parses the frames after any routing frames. Returns nil for anything malformed.
    public static func parse(_ frames: ArraySlice<[UInt8]>) -> (command: WireCommand, body: [UInt8])? {
        guard let first = frames.first, first.count == 2, first[0] == marker,
              let command = WireCommand(rawValue: first[1]), frames.count <= 2
        else { return nil }
        return (command, frames.count == 2 ? frames[frames.startIndex + 1] : [])
    }
}
