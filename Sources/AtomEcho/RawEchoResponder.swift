internal import AtomRPC
internal import AtomProto
internal import Foundation

/// A plain ZeroMQ REP socket answering EchoRequest with EchoResponse (protobuf-c both ways),
/// with no gateway, envelope or async runtime in between: the baseline `atom bench rpc`
/// measures the gateway's round trip against, in the same processes and the same run.
public enum RawEchoResponder {
    /// Binds `endpoint` (or connects to it, as a worker behind a broker) and answers on a thread
    /// of its own for the life of the process.
    public static func start(endpoint: String, connect: Bool = false) throws {
        let socket = try ZMQSocket(.rep)
        if connect { try socket.connect(endpoint) } else { try socket.bind(endpoint) }
        let thread = Thread(named: "atom-echo-raw", onMessagePath: true) {
            var poller = ZMQPoller([.socket(socket)])
            while true {
                guard (try? poller.poll(timeoutMs: -1)) != nil else { continue }
                while let frames = try? socket.receive() {
                    var response = EchoResponse()
                    if let body = frames.last, let request = try? EchoRequest(serializedBytes: body) {
                        response.payload = request.payload
                        response.text = request.text
                    }
                    try? socket.send([(try? response.serializedBytes()) ?? []], wait: true)
                }
            }
        }
        thread.start()
    }
}
