import AtomProto
import Testing

@testable import AtomRPC

@Suite("Wire framing and error values")
struct WireAndErrorTests {
    @Test("every command frames and parses back")
    func framesRoundTrip() throws {
        for command in WireCommand.allCases {
            let frames = WireFrame.frames(command, body: [1, 2, 3])
            let parsed = try #require(WireFrame.parse(frames[...]))
            #expect(parsed.command == command)
            #expect(parsed.body == [1, 2, 3])
        }
        let bodiless = try #require(WireFrame.parse(WireFrame.frames(.heartbeat)[...]))
        #expect(bodiless.body.isEmpty)
    }

    @Test("routed frames carry the gateway's call id, the time left and the end of stream")
    func routedFrames() throws {
        let route = RouteHeader(callId: 9, timeoutMs: 250, endOfStream: true)
        let frames = WireFrame.routedFrames(.response, route: route, body: [4, 5])
        let parsed = try #require(WireFrame.parseRouted(frames[...]))
        #expect(parsed.command == .response && parsed.route == route && parsed.body == [4, 5])
        #expect(WireFrame.parseRouted(frames.prefix(2)) == nil)
        #expect(WireFrame.parseRouted([[0xA7, 0x03], [0xFF, 0xFF], []]) == nil)
    }

    @Test(
        "malformed frames are rejected",
        arguments: [
            [[UInt8]](),
            [[]],
            [[0xA7]],
            [[0x00, 0x01], [1]],
            [[0xA7, 0x7F], [1]],
            [[0xA7, 0x01, 0x00], [1]],
            [[0xA7, 0x01], [1], [2]],
        ] as [[[UInt8]]])
    func malformedFrames(frames: [[UInt8]]) {
        #expect(WireFrame.parse(frames[...]) == nil)
    }

    @Test("errors map to status codes at one boundary")
    func errorMapping() {
        #expect(RPCError.from(RPCError(.notFound, "x")).code == .notFound)
        #expect(RPCError.from(ProtoError(kind: .malformed, message: "bad")).code == .invalidArgument)
        #expect(RPCError.from(CancellationError()).code == .cancelled)
        struct Odd: Error {}
        #expect(RPCError.from(Odd()).code == .unknown)
        let withReason = RPCError.withReason(.unavailable, "gone", reason: "INSTANCE_LOST")
        #expect(withReason.reason == "INSTANCE_LOST")
        #expect(RPCError(.ok, "").reason == nil)
        #expect(StatusCode.invalidArgument.displayName == "INVALID_ARGUMENT")
        #expect(StatusCode.allCases.count == 17)
    }

    @Test("invalid environment settings stop a process with a clear message")
    func environmentValidation() throws {
        let defaults = try AtomEnvironment(["HOME": "/home/someone"])
        #expect(defaults.gateway == AtomEnvironment.defaultGateway)
        #expect(defaults.home == "/home/someone/.atom")
        #expect(defaults.capacity == 64)
        #expect(defaults.heartbeatInterval == .seconds(1))
        #expect(defaults.idlePollWindow == .microseconds(500))
        #expect(try AtomEnvironment(["ATOM_IDLE_POLL_US": "0"]).idlePollWindow == .zero)
        let custom = try AtomEnvironment(["ATOM_GATEWAY": "ipc:///tmp/x", "ATOM_HOME": "/srv/atom", "ATOM_CAPACITY": "8", "ATOM_HEARTBEAT_MS": "250"])
        #expect(custom.gateway == "ipc:///tmp/x")
        #expect(custom.home == "/srv/atom")
        #expect(custom.capacity == 8)
        #expect(custom.heartbeatInterval == .milliseconds(250))
        for bad in [["ATOM_GATEWAY": "localhost:7700"], ["ATOM_CAPACITY": "0"], ["ATOM_CAPACITY": "many"], ["ATOM_HEARTBEAT_MS": "10"], ["ATOM_IDLE_POLL_US": "-1"], ["ATOM_IDLE_POLL_US": "200000"], ["ATOM_LOG_LEVEL": "loud"]] {
            #expect(throws: AtomEnvironment.InvalidSetting.self) { try AtomEnvironment(bad) }
            do {
                _ = try AtomEnvironment(bad)
            } catch {
                #expect("\(error)".contains(bad.keys.first!))
            }
        }
    }

    @Test("endpoints are checked before libzmq sees them")
    func endpoints() {
        for good in ["tcp://127.0.0.1:7700", "tcp://*:7700", "tcp://127.0.0.1:*", "tcp://[::1]:80", "ipc:///tmp/atom.sock", "inproc://x"] {
            #expect(AtomEnvironment.endpointProblem(good) == nil, "\(good)")
        }
        for bad in ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:http", "tcp://:80", "tcp://host", "ipc://", "localhost:7700", "", "udp://1.2.3.4:5"] {
            #expect(AtomEnvironment.endpointProblem(bad) != nil, "\(bad)")
        }
        #expect(AtomEnvironment.endpointProblem("ipc:///" + String(repeating: "a", count: 200))?.contains("107") == true)
    }

    @Test("call options inherit the remaining deadline and the request id")
    func callOptionsFromParent() {
        let context = RPCContext(
            service: "s", method: "m", deadline: .now + .milliseconds(500),
            metadata: [MetadataEntry(key: RPCMetadataKey.requestID, value: "req-1")], instanceID: "i")
        let options = CallOptions(parent: context)
        #expect(options.timeout <= .milliseconds(500))
        #expect(options.timeout > .milliseconds(300))
        #expect(options.metadata.contains { $0.key == RPCMetadataKey.requestID && $0.value == "req-1" })
        let shorter = CallOptions(parent: context, timeout: .milliseconds(100))
        #expect(shorter.timeout == .milliseconds(100))
    }
}
