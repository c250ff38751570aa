import AtomCLI
import AtomProto
import AtomRPC
import AtomTesting
import CZeroMQ
import Foundation
import Testing

extension LocalStack {
    /// The processes this stack started under `name`.
    func processes(named name: String) throws -> [ManagedProcess] {
        started.filter { $0.name == name }
    }
}

/// Runs the `atom` executable (or another of this build) and captures what it prints.
enum CLI {
    struct Outcome {
        let status: Int32
        let output: String
    }

    static func run(_ arguments: [String], environment: [String: String]) throws -> Outcome {
        try runExecutable("atom", arguments, environment: environment)
    }

    static func runExecutable(_ name: String, _ arguments: [String], environment: [String: String]) throws -> Outcome {
        try runExecutableAt(TestBinaries.path(name), arguments, environment: environment)
    }

    static func runExecutableAt(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        process.environment = variables
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("atom-cli-\(UUID().uuidString).out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        // Never hang a test on a child that does not exit: 60 s, then SIGKILL.
        let deadline = ContinuousClock.now + .seconds(60)
        while ChildLiveness.isRunning(process) && ContinuousClock.now < deadline { usleep(10_000) }
        if ChildLiveness.isRunning(process) { kill(process.processIdentifier, SIGKILL) }
        let deadlineAfterKill = ContinuousClock.now + .seconds(5)
        while ChildLiveness.isRunning(process) && ContinuousClock.now < deadlineAfterKill { usleep(10_000) }
        let status = ChildLiveness.status(process)
        try handle.close()
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: output)
        return Outcome(status: status, output: text)
    }
}

extension CLI {
    /// `atom bench ARGUMENTS --json FILE` with FILE in `directory` (removed after): the run, and
    /// the report it wrote (the test fails if there is none).
    static func bench(_ arguments: [String], in directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> (run: Outcome, report: [String: Any], results: [[String: Any]])
    {
        let path = directory + "/atom-bench-report-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let run = try CLI.run(["bench"] + arguments + ["--json", path], environment: [:])
        // The run's output says why when there is no report.
        let data = try #require(FileManager.default.contents(atPath: path), "no report; exit \(run.status):\n\(run.output)", sourceLocation: sourceLocation)
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(run.output)", sourceLocation: sourceLocation)
        let results = try #require(report["results"] as? [[String: Any]], sourceLocation: sourceLocation)
        return (run, report, results)
    }
}

/// Finds the processes that belong to a stack by the ATOM_HOME in their environment.
enum StackProcesses {
    static func find(home: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != getpid(),
                  let environ = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
            else { return false }
            let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard variables.contains("ATOM_HOME=\(home)") else { return false }
            // A zombie has exited already.
            let status = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !status.contains(") Z ")
        }
    }
}

/// A raw ZeroMQ peer that speaks (or mangles) the wire protocol by hand.
enum RawPeer {
    /// Frames no valid peer would send.
    static let garbage: [[[UInt8]]] = [
        [[]],
        [[0xFF, 0xFF, 0xFF]],
        [[0xA7]],
        [[0xA7, 0x01]],
        [[0xA7, 0x01], [0x0A, 0xFF, 0xFF, 0xFF, 0x0F]],  // truncated length-delimited field
        [[0xA7, 0x01], Array("not protobuf at all".utf8)],
        [[0xA7, 0x03], [0x08, 0x80]],  // truncated varint response
        [[0xA7, 0x10], [0x0A, 0x02, 0xC3, 0x28]],  // READY with invalid UTF-8
        [[0xA7, 0x11], [1, 2, 3]],
        [[0xA7, 0x02], []],
        [[0xA7, 0x12]],
        [[0xA7, 0x01], [], [], []],
        [(0..<300).map { UInt8($0 % 256) }],
    ]

    static func sendGarbage(to endpoint: String) throws {
        for frames in garbage {
            let socket = try ZMQSocket(.dealer)
            try socket.connect(endpoint)
            try socket.send(frames, wait: true)
            usleep(5_000)
            socket.close()
        }
        // A frame far over the size limit: the gateway drops the peer, nothing else.
        let huge = try ZMQSocket(.dealer)
        try huge.connect(endpoint)
        try huge.send([[0xA7, 0x01], [UInt8](repeating: 7, count: RPCLimits.maxFrameBytes + 1024)], wait: true)
        usleep(50_000)
        huge.close()
    }

    /// A ROUTER that plays the gateway for one service instance.
    final class FakeGateway {
        let socket: ZMQSocket
        let endpoint: String

        init() throws {
            socket = try ZMQSocket(.router)
            try socket.setRouterMandatory(true)
            try socket.bind("tcp://127.0.0.1:*")
            endpoint = try socket.lastEndpoint()
        }

        func receive(timeout: Duration) throws -> [[UInt8]]? {
            var poller = ZMQPoller([.socket(socket)])
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let frames = try socket.receive() { return frames }
                _ = try poller.poll(timeoutMs: 50)
            }
            return nil
        }

        func waitForReady(timeout: Duration) throws -> (identity: [UInt8], service: String) {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                guard let frames = try receive(timeout: .milliseconds(200)), frames.count == 3,
                      frames[1] == WireFrame.header(.ready)
                else { continue }
                let ready = try WorkerReady(serializedBytes: frames[2])
                try socket.send([frames[0]] + WireFrame.frames(.heartbeat))
                return (frames[0], ready.service)
            }
            throw RPCError(.deadlineExceeded, "the service never sent READY")
        }

        func sendGarbage(to identity: [UInt8]) {
            for frames in RawPeer.garbage {
                try? socket.send([identity] + frames)
            }
        }

        func call<Request: ProtoMessage>(_ identity: [UInt8], method: String, request: Request, timeout: Duration) throws -> ResponseEnvelope {
            let envelope = RequestEnvelope(service: "atom.v1.Echo", method: method, callId: 4242, payload: try request.serializedBytes())
            let frames = WireFrame.routedFrames(.request, route: RouteHeader(callId: 77, timeoutMs: 5_000), body: try envelope.serializedBytes())
            try socket.send([identity] + frames)
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                guard let frames = try receive(timeout: .milliseconds(200)), frames.count == 4,
                      let (command, route, body) = WireFrame.parseRouted(frames[1...]), command == .response
                else { continue }
                let response = try ResponseEnvelope(serializedBytes: body)
                // Routed by the gateway's id; the envelope keeps the caller's.
                if route.callId == 77 && route.endOfStream && response.callId == 4242 { return response }
            }
            throw RPCError(.deadlineExceeded, "no response from the service")
        }
    }
}
