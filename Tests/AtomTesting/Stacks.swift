public import AtomCLI
public import AtomGateway
public import AtomRPC
internal import AtomEcho
internal import Foundation

/// Runs `body` against a stack of real processes (gateway + echo instances) on a free TCP
/// port, and stops every process and removes the stack's files afterwards, even when `body`
/// throws.
public func withProcessStack<T>(
    echoInstances: Int = 1, heartbeatMs: Int = 200, echoEnvironment: [String: String] = [:],
    _ body: (LocalStack) async throws -> T
) async throws -> T {
    let stack = try LocalStack(heartbeatMs: heartbeatMs, binDirectory: TestBinaries.directory)
    do {
        try stack.startGateway()
        for index in 0..<echoInstances {
            try stack.startEcho(instanceID: "echo-\(index + 1)", environment: echoEnvironment)
        }
        if echoInstances > 0 {
            try await stack.waitForService("atom.v1.Echo", instances: echoInstances)
        }
        let result = try await body(stack)
        await stack.stopAll()
        return result
    } catch {
        for name in ["atom-gateway"] + (0..<echoInstances).map({ "echo-\($0 + 1)" }) {
            let log = stack.log(of: name)
            if !log.isEmpty { print("--- \(name) log ---\n\(log.suffix(3000))") }
        }
        await stack.stopAll()
        throw error
    }
}

/// A gateway and services inside the test process (real ZeroMQ sockets on a unique ipc
/// endpoint, real threads): fast, for semantics that need no process boundary.
public final class InProcessStack: Sendable {
    public let endpoint: String
    public let gateway: Gateway
    private let tasks: TaskBag
    private let socketPath: String

    public init(gatewayConfiguration: GatewayConfiguration? = nil) throws {
        let path = NSTemporaryDirectory() + "atom-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
        endpoint = "ipc://\(path)"
        socketPath = path
        var configuration = gatewayConfiguration ?? GatewayConfiguration()
        configuration.endpoint = endpoint
        if gatewayConfiguration == nil { configuration.heartbeatInterval = .milliseconds(100) }
        gateway = try Gateway(configuration: configuration)
        tasks = TaskBag()
        let gateway = self.gateway
        tasks.add(Task { await gateway.run() })
    }

    /// Starts a server for `service`; returns it so a test can shut it down.
    @discardableResult
    public func serve(_ service: any RPCService, instanceID: String, capacity: Int = 64, heartbeat: Duration = .milliseconds(100)) -> RPCServer {
        let server = RPCServer(
            service: service,
            configuration: RPCServerConfiguration(
                gatewayEndpoint: endpoint, instanceID: instanceID, capacity: capacity, heartbeatInterval: heartbeat))
        tasks.add(Task { await server.run() })
        return server
    }

    public func client(name: String = "test") throws -> RPCClient {
        try RPCClient(endpoint: endpoint, name: name)
    }

    public func stop() async {
        gateway.stop()
        await tasks.cancelAndWait()
        // libzmq leaves the socket file behind when the context outlives the listener.
        unlink(socketPath)
    }
}

/// Tasks a stack owns, cancelled and awaited on stop.
final class TaskBag: @unchecked Sendable {
    private let lock = NSLock()
    private var tasks: [Task<Void, Never>] = []

    func add(_ task: Task<Void, Never>) { lock.withLock { tasks.append(task) } }

    func cancelAndWait() async {
        let all = lock.withLock { tasks }
        for task in all { task.cancel() }
        for task in all { await task.value }
    }
}

/// Where `swift build` put this build's executables (beside the test bundle).
public enum TestBinaries {
    public static var directory: String {
        let bundle = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: bundle).deletingLastPathComponent()
        // The test binary may sit inside a .xctest bundle directory.
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("atom-gateway").path) && url.path != "/" {
            url = url.deletingLastPathComponent()
        }
        return url.path
    }

    public static func path(_ executable: String) -> String { "\(directory)/\(executable)" }
}
