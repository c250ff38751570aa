internal import CZeroMQ
internal import Foundation
public import Logging
internal import Synchronization

/// The ZeroMQ Authentication Protocol (RFC 27) handler of a CurveZMQ server: libzmq asks it,
/// for every connecting peer, whether the peer's public key may connect. Only listed keys are
/// accepted; everyone else fails the handshake and never reaches a service.
public final class ZAPHandler: Sendable {
    private let stopped = Atomic<Bool>(false)

    /// Binds the context's ZAP endpoint and answers on a thread of its own. Start it before
    /// the server socket binds.
    public init(authorizedKeys: [String: String], logger: Logger, context: ZMQContext = .shared) throws {
        let socket = try ZMQSocket(.rep, context: context)
        try socket.bind("inproc://zeromq.zap.01")
        let thread = Thread(named: "atom-zap") { [self] in
            var poller = ZMQPoller([.socket(socket)])
            while !self.stopped.load(ordering: .relaxed) {
                guard let readable = try? poller.poll(timeoutMs: 200), readable[0] else { continue }
                while let request = try? socket.receive() {
                    let reply = ZAPHandler.answer(request, authorizedKeys: authorizedKeys, logger: logger)
                    try? socket.send(reply, wait: true)
                }
            }
            socket.close()
        }
        thread.start()
    }

    public func stop() { stopped.store(true, ordering: .relaxed) }

    static func answer(_ request: [[UInt8]], authorizedKeys: [String: String], logger: Logger) -> [[UInt8]] {
        let version = Array("1.0".utf8)
        guard request.count >= 6 else {
            return [version, request.count > 1 ? request[1] : [], Array("500".utf8), Array("malformed ZAP request".utf8), [], []]
        }
        let requestID = request[1]
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        func reply(_ status: String, _ text: String, user: String = "") -> [[UInt8]] {
            [version, requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard mechanism == "CURVE", request.count >= 7, request[6].count == 32 else {
            logger.warning("rejected a peer without CurveZMQ", metadata: ["address": "\(address)", "mechanism": "\(mechanism)"])
            return reply("400", "CurveZMQ is required")
        }
        let key = z85(request[6])
        guard let name = authorizedKeys[key] else {
            logger.warning("rejected an unknown CurveZMQ key", metadata: ["address": "\(address)", "key": "\(key)"])
            return reply("400", "unknown key")
        }
        logger.debug("accepted a CurveZMQ key", metadata: ["address": "\(address)", "name": "\(name)"])
        return reply("200", "OK", user: name)
    }

    static func z85(_ key: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: 41)
        _ = key.withUnsafeBufferPointer { zmq_z85_encode(&text, $0.baseAddress, 32) }
        return String(nulTerminated: text)
    }
}

/// Reads a socket's handshake events (from `ZMQSocket.monitorHandshakes`) and turns them into
/// what a person can act on.
struct HandshakeMonitor {
    let socket: ZMQSocket

    enum Event {
        case succeeded
        case failed(String)
    }

    init(watching target: ZMQSocket, context: ZMQContext) throws {
        let endpoint = "inproc://atom-handshake-\(UInt64.random(in: 0...UInt64.max))"
        try target.monitorHandshakes(endpoint)
        socket = try ZMQSocket(.pair, context: context)
        try socket.connect(endpoint)
    }

    /// Drains pending events; returns the latest.
    func drain(gateway: String, security: TransportSecurity) -> Event? {
        var latest: Event?
        while let frames = try? socket.receive(), let first = frames.first, first.count >= 6 {
            let event = UInt16(first[0]) | UInt16(first[1]) << 8
            let value = UInt32(first[2]) | UInt32(first[3]) << 8 | UInt32(first[4]) << 16 | UInt32(first[5]) << 24
            switch Int32(event) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
                latest = .succeeded
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                latest = .failed(
                    "the gateway at \(gateway) rejected this process's CurveZMQ key (ZAP status \(value)): add its public key to the gateway's ATOM_CURVE_AUTHORIZED_KEYS")
            default:
                if case .plaintext = security {
                    latest = .failed(
                        "the handshake with the gateway at \(gateway) failed: it may require CurveZMQ; set ATOM_CURVE_SERVER_KEY and ATOM_CURVE_SECRET_KEY")
                } else {
                    latest = .failed(
                        "the CurveZMQ handshake with the gateway at \(gateway) failed: check that ATOM_CURVE_SERVER_KEY holds the gateway's public key and that the gateway uses CurveZMQ")
                }
            }
        }
        return latest
    }
}
