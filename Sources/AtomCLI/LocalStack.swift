public import AtomRPC
internal import AtomAPI
internal import AtomProto
internal import Foundation

/// A child process started by `LocalStack`.
public final class ManagedProcess: @unchecked Sendable {
    public let name: String
    let process: Process

    init(name: String, process: Process) {
        self.name = name
        self.process = process
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { ChildLiveness.isRunning(process) }
    /// The exit status once it has exited (-1 when unknown).
    public var exitStatus: Int32 { ChildLiveness.status(process) }

    /// SIGTERM: a graceful stop.
    public func terminate() { if isRunning { Foundation.kill(pid, SIGTERM) } }
    /// SIGKILL: a crash, as far as everyone else can tell.
    public func kill() { if isRunning { Foundation.kill(pid, SIGKILL) } }
    /// SIGSTOP / SIGCONT: a frozen process (alive, but silent).
    public func freeze() { if isRunning { Foundation.kill(pid, SIGSTOP) } }
    public func thaw() { if isRunning { Foundation.kill(pid, SIGCONT) } }

    /// Waits for the process to exit; true if it did within `timeout`.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !isRunning
    }
}

/// A gateway and services as real child processes on a private endpoint: what `atom bench`
/// runs against, and what the end-to-end tests build on. `stopAll()` leaves no process behind.
public final class LocalStack: @unchecked Sendable {
    public let endpoint: String
    public let home: String
    public let heartbeatMs: Int
    /// How this stack's own clients (`waitForService`) connect.
    public var security: TransportSecurity = .plaintext
    private let binDirectory: String
    private let lock = NSLock()
    private var processes: [ManagedProcess] = []

    /// How a stack's processes reach its gateway.
    public enum Transport: String, Sendable {
        /// Unix sockets: what the services of `atom up` use to reach their gateway.
        case ipc
        /// TCP loopback: what a client or service on another host pays, minus the network.
        case tcp

        /// A free endpoint of this transport (an ipc socket file named `name` in `directory`).
        public func freeEndpoint(in directory: String, name: String) throws -> String {
            switch self {
            case .ipc: "ipc://\(directory)/\(name).ipc"
            case .tcp: try LocalStack.freeTCPEndpoint()
            }
        }
    }

    /// - Parameters:
    ///   - endpoint: the gateway endpoint; by default a free one of `transport`.
    ///   - heartbeatMs: heartbeat interval of every process (short in tests: faster failure detection).
    ///   - transport: TCP loopback by default (what the tests exercise); the benchmarks use ipc,
    ///     as the services of `atom up` do.
    public init(
        endpoint: String? = nil, heartbeatMs: Int = 1_000, home: String? = nil, binDirectory: String? = nil,
        transport: Transport = .tcp
    ) throws {
        self.heartbeatMs = heartbeatMs
        // Short: an ipc socket path must fit in 107 bytes.
        let base = home ?? "/tmp/atom-stack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        self.home = base
        self.endpoint = try endpoint ?? transport.freeEndpoint(in: base, name: "gateway")
        if let binDirectory {
            self.binDirectory = binDirectory
        } else {
            self.binDirectory = URL(fileURLWithPath: try ExecutableLocator.path(for: "atom-gateway")).deletingLastPathComponent().path
        }
    }

    deinit { stopAllNow() }

    /// A TCP endpoint on 127.0.0.1 with a port that was free a moment ago (bound to port 0
    /// and closed again with a plain socket, whose close releases the port at once; a ZeroMQ
    /// socket would release it later, on its I/O thread).
    public static func freeTCPEndpoint() throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RPCError(.internal, "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
        }
        guard bound == 0 else { throw RPCError(.internal, "bind() failed: errno \(errno)") }
        var actual = sockaddr_in()
        var length = size
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return "tcp://127.0.0.1:\(UInt16(bigEndian: actual.sin_port))"
    }

    /// Starts an executable of this build (`atom-gateway`, `atom-echo`, ...).
    @discardableResult
    public func start(_ executable: String, name: String? = nil, arguments: [String] = [], environment extra: [String: String] = [:]) throws -> ManagedProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(binDirectory)/\(executable)")
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        variables["ATOM_GATEWAY"] = endpoint
        variables["ATOM_HOME"] = home
        variables["ATOM_HEARTBEAT_MS"] = String(heartbeatMs)
        variables["ATOM_PARENT_PID"] = String(getpid())
        variables["ATOM_LOG_LEVEL"] = variables["ATOM_LOG_LEVEL"] ?? "warning"
        for (key, value) in extra { variables[key] = value }
        process.environment = variables
        let log = FileHandle(forWritingAtPath: logPath(name ?? executable)) ?? FileHandle.standardError
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let managed = ManagedProcess(name: name ?? executable, process: process)
        lock.withLock { processes.append(managed) }
        return managed
    }

    /// Every process started so far, in start order.
    public var started: [ManagedProcess] { lock.withLock { processes } }

    private func logPath(_ name: String) -> String {
        let path = "\(home)/\(name).log"
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        return path
    }

    /// What a process wrote to stderr and stdout so far.
    public func log(of name: String) -> String {
        (try? String(contentsOfFile: "\(home)/\(name).log", encoding: .utf8)) ?? ""
    }

    @discardableResult
    public func startGateway() throws -> ManagedProcess {
        try start("atom-gateway")
    }

    @discardableResult
    public func startEcho(instanceID: String, environment: [String: String] = [:]) throws -> ManagedProcess {
        var variables = environment
        variables["ATOM_INSTANCE_ID"] = instanceID
        return try start("atom-echo", name: instanceID, environment: variables)
    }

    /// Waits until `service` has at least `instances` serving instances.
    public func waitForService(_ service: String, instances: Int = 1, timeout: Duration = .seconds(20)) async throws {
        let client = try RPCClient(endpoint: endpoint, name: "local-stack", security: security)
        defer { client.close() }
        let deadline = ContinuousClock.now + timeout
        var last = "no answer"
        while ContinuousClock.now < deadline {
            do {
                let health = try await GatewayClient(client).health(GatewayHealthRequest(service: service), options: CallOptions(timeout: .seconds(2)))
                let serving = health.services.first { $0.service == service }?.instances.filter { $0.status == .serving }.count ?? 0
                if serving >= instances { return }
                last = "\(serving) of \(instances) instances serving"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RPCError(.deadlineExceeded, "\(service) did not get \(instances) serving instance(s) at \(endpoint) in time: \(last)")
    }

    /// SIGTERM to everything, SIGKILL to what is left after `grace`, then removes the home
    /// directory unless `keepHome`.
    public func stopAll(grace: Duration = .seconds(5), keepHome: Bool = false) async {
        let all = lock.withLock { processes }
        for process in all { process.terminate() }
        for process in all where !(await process.waitForExit(timeout: grace)) { process.kill() }
        for process in all { await process.waitForExit(timeout: .seconds(2)) }
        if !keepHome { try? FileManager.default.removeItem(atPath: home) }
    }

    private func stopAllNow() {
        for process in lock.withLock({ processes }) {
            process.thaw()
            process.kill()
        }
    }
}
