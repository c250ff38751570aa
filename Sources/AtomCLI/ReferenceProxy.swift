internal import AtomMetrics
internal import AtomProto
internal import AtomRPC
internal import Foundation
internal import Histogram

/// The same topology as a call through the gateway (client -> broker -> echo worker and back, over
/// the same transport, 8 requests in flight), with nothing of this project's code in the path:
/// libzmq's own C broker (`zmq_proxy`) in a process of its own (`atom reference-broker`), raw REP
/// workers in the echo process, and a raw DEALER client in a thread of the benchmark process
/// that keeps N requests in flight. Three processes with an I/O thread each, as for the gateway:
/// its calls/s are the ceiling a brokered design of this shape reaches on the machine.
final class ReferenceProxy: Sendable {
    /// Where clients send; where workers connect.
    let frontend: String
    let backend: String
    private let broker: ManagedProcess
    var brokerPID: Int32 { broker.pid }

    init(transport: LocalStack.Transport, scratch: String) throws {
        frontend = try transport.freeEndpoint(in: scratch, name: "c-broker-front")
        backend = try transport.freeEndpoint(in: scratch, name: "c-broker-back")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ExecutableLocator.path(for: "atom"))
        process.arguments = ["reference-broker", frontend, backend]
        var environment = ProcessInfo.processInfo.environment
        environment["ATOM_PARENT_PID"] = String(getpid())
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Clients and workers may connect before it binds: libzmq reconnects until it does, and
        // every measurement first waits for one answer.
        broker = ManagedProcess(name: "atom-reference-broker", process: process)
    }

    /// Stops the broker process.
    func stop() async {
        broker.terminate()
        if !(await broker.waitForExit(timeout: .seconds(2))) { broker.kill() }
    }

    deinit { broker.kill() }

    /// Keeps `inFlight` EchoRequests outstanding for `seconds`, on a thread of its own; each
    /// reply's latency is recorded from the send of the request it answers.
    func throughput(inFlight: Int, seconds: Double, payload: [UInt8]) async throws -> (Histogram<UInt64>, Double) {
        let frontend = self.frontend
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread(named: "atom-bench-c-broker-client", onMessagePath: true) {
                do {
                    let socket = try ZMQSocket(.dealer)
                    try socket.connect(frontend)
                    var poller = ZMQPoller([.socket(socket)])
                    let body = try EchoRequest(payload: payload).serializedBytes()
                    var histogram = BenchReport.histogram()
                    // Request ids ride in the envelope frame so each reply finds its send time.
                    var sentAt = [ContinuousClock.Instant](repeating: .now, count: inFlight)
                    func send(_ slot: Int) throws {
                        sentAt[slot] = .now
                        try socket.send([withUnsafeBytes(of: UInt32(slot)) { Array($0) }, [], body], wait: true)
                    }
                    // The worker must be connected before the clock starts.
                    try send(0)
                    var lastReply = ContinuousClock.now
                    func awaitReplies() throws {
                        _ = try poller.poll(timeoutMs: 1_000)
                        if ContinuousClock.now - lastReply > .seconds(10) {
                            throw CLIFailure(.failure, "the reference broker's echo worker did not answer for 10 s")
                        }
                    }
                    while try socket.receive() == nil { try awaitReplies() }
                    lastReply = .now
                    for slot in 0..<inFlight { try send(slot) }
                    let start = ContinuousClock.now
                    let stopAt = start + .milliseconds(Int64(seconds * 1000))
                    var outstanding = inFlight
                    while outstanding > 0 {
                        try awaitReplies()
                        while let frames = try socket.receive() {
                            lastReply = .now
                            guard frames.count == 3, frames[0].count == 4 else { continue }
                            let slot = Int(frames[0].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
                            guard slot < inFlight else { continue }
                            _ = try EchoResponse(serializedBytes: frames[2])
                            _ = histogram.record(LatencyRecorder.nanoseconds(ContinuousClock.now - sentAt[slot]))
                            if ContinuousClock.now < stopAt { try send(slot) } else { outstanding -= 1 }
                        }
                    }
                    let elapsed = Double((ContinuousClock.now - start) / .microseconds(1)) / 1_000_000
                    socket.close()
                    continuation.resume(returning: (histogram, Double(histogram.totalCount) / elapsed))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.start()
        }
    }
}
