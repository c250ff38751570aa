import AtomCLI
import AtomTesting
import Foundation
import Testing

/// Several hosts on one machine: network namespaces joined by a bridge, each with its own
/// address on 169.254.77.0/24 (link-local: never routed anywhere). Needs root; skipped with a
/// message where namespaces cannot be created.
final class NetworkLab: @unchecked Sendable {
    let tag = String(UInt32.random(in: 0...0xFFFF), radix: 16)
    private(set) var namespaces: [String] = []
    private var processes: [Process] = []
    var switchNamespace: String { "atsw\(tag)" }

    static var available: Bool {
        let probe = "atprobe\(UInt32.random(in: 0...0xFFFF))"
        guard (try? run("/usr/sbin/ip", ["netns", "add", probe]))?.status == 0 else { return false }
        _ = try? run("/usr/sbin/ip", ["netns", "del", probe])
        return true
    }

    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let outcome = try CLI.runExecutableAt(path, arguments)
        return (outcome.status, outcome.output)
    }

    func ip(_ arguments: String...) throws {
        let result = try NetworkLab.run("/usr/sbin/ip", arguments)
        guard result.status == 0 else { throw LabError("ip \(arguments.joined(separator: " ")): \(result.output)") }
    }

    struct LabError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    init() throws {
        try ip("netns", "add", switchNamespace)
        namespaces.append(switchNamespace)
        try ip("-n", switchNamespace, "link", "add", "br0", "type", "bridge")
        try ip("-n", switchNamespace, "link", "set", "br0", "up")
    }

    /// Adds a host with address 169.254.77.`number`, cabled to the switch.
    func addHost(_ name: String, number: Int) throws -> String {
        let namespace = "at\(name)\(tag)"
        let inside = "v\(name)\(tag)"
        let port = "p\(name)\(tag)"
        try ip("netns", "add", namespace)
        namespaces.append(namespace)
        try ip("link", "add", inside, "type", "veth", "peer", "name", port)
        try ip("link", "set", inside, "netns", namespace)
        try ip("link", "set", port, "netns", switchNamespace)
        try ip("-n", switchNamespace, "link", "set", port, "master", "br0")
        try ip("-n", switchNamespace, "link", "set", port, "up")
        try ip("-n", namespace, "addr", "add", "169.254.77.\(number)/24", "dev", inside)
        try ip("-n", namespace, "link", "set", inside, "up")
        try ip("-n", namespace, "link", "set", "lo", "up")
        return namespace
    }

    /// Pulls a host's cable out of the switch.
    func cutOff(_ name: String) throws {
        try ip("-n", switchNamespace, "link", "set", "p\(name)\(tag)", "down")
    }

    /// Starts an executable of this build inside a host.
    func start(in namespace: String, _ executable: String, arguments: [String] = [], environment: [String: String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, TestBinaries.path(executable)] + arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        variables["ATOM_PARENT_PID"] = String(getpid())
        process.environment = variables
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes.append(process)
        return process
    }

    /// Runs the `atom` CLI inside a host and waits for it.
    func atom(in namespace: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Outcome {
        try CLI.runExecutableAt("/usr/sbin/ip", ["netns", "exec", namespace, TestBinaries.path("atom")] + arguments, environment: environment)
    }

    func tearDown() {
        for process in processes where ChildLiveness.isRunning(process) { kill(process.processIdentifier, SIGKILL) }
        let deadline = Date().addingTimeInterval(5)
        while processes.contains(where: ChildLiveness.isRunning) && Date() < deadline { usleep(20_000) }
        for namespace in namespaces.reversed() { _ = try? NetworkLab.run("/usr/sbin/ip", ["netns", "del", namespace]) }
    }
}

@Suite("Several hosts", .serialized, .timeLimit(.minutes(2)))
struct MultiHostTests {
    @Test("instances on other hosts share the load; a stopped host and a cut-off host fail over within the heartbeat timeout")
    func failover() async throws {
        guard NetworkLab.available else {
            print("skipped: network namespaces cannot be created here (needs root and `ip netns`)")
            return
        }
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let logs = NSTemporaryDirectory() + "atom-lab-\(lab.tag)"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: logs) }

        let gatewayHost = try lab.addHost("gw", number: 1)
        let hosts = try (1...3).map { try lab.addHost("h\($0)", number: 10 + $0) }
        let clientHost = try lab.addHost("cl", number: 100)
        let gateway = "tcp://169.254.77.1:7700"
        let common = ["ATOM_HEARTBEAT_MS": "200", "ATOM_LOG_LEVEL": "info", "ATOM_HOME": logs]
        _ = try lab.start(in: gatewayHost, "atom-gateway", environment: common.merging(["ATOM_GATEWAY": "tcp://169.254.77.1:7700"]) { $1 }, log: "\(logs)/gateway.log")
        var echoes: [Process] = []
        for (index, host) in hosts.enumerated() {
            echoes.append(try lab.start(
                in: host, "atom-echo",
                environment: common.merging(["ATOM_GATEWAY": gateway, "ATOM_INSTANCE_ID": "echo-\(index + 1)"]) { $1 },
                log: "\(logs)/echo-\(index + 1).log"))
        }
        let environment = ["ATOM_GATEWAY": gateway, "ATOM_HOME": logs]
        var serving = 0
        for _ in 0..<100 where serving < 3 {
            let health = try lab.atom(in: clientHost, ["health", "--json", "--timeout", "2"], environment: environment)
            serving = health.output.components(separatedBy: "\"status\" : \"SERVING\"").count - 2
            if serving < 3 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(serving == 3, "three instances on three hosts must register")

        // 400 calls, one every 15 ms (6 s at least), from the client host; meanwhile host 1 stops (at
        // 1 s) and host 2 is cut off (at 2 s). With 200 calls (3 s) a slow start left the cut-off
        // inside the last 40 calls once.
        let pingLog = "\(logs)/ping.json"
        let ping = try lab.start(
            in: clientHost, "atom", arguments: ["ping", "--json", "--count", "400", "--interval-ms", "15", "--timeout", "2"],
            environment: environment, log: pingLog)
        try await Task.sleep(for: .milliseconds(1_000))
        kill(echoes[0].processIdentifier, SIGKILL)
        try await Task.sleep(for: .milliseconds(1_000))
        try lab.cutOff("h2")
        for _ in 0..<300 where ChildLiveness.isRunning(ping) { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!ChildLiveness.isRunning(ping), "the pinging client must finish: no call may hang")
        let output = (try? String(contentsOfFile: pingLog, encoding: .utf8)) ?? ""

        let json = try #require(output.firstIndex(of: "[").map { output[$0...] }, "\(output)")
        let calls = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(calls.count == 400, "every caller gets an answer")
        let codes = Set(calls.compactMap { $0["code"] as? String })
        #expect(codes.isSubset(of: ["OK", "UNAVAILABLE"]), "\(codes): only answers or a clear UNAVAILABLE")
        // After the cut-off host's three heartbeats (600 ms) and a margin, only echo-3 answers.
        let instances = calls.map { $0["instance"] as? String ?? ($0["code"] as? String ?? "?") }
        let tail = instances.suffix(40)
        #expect(tail.allSatisfy { $0 == "echo-3" }, "the last calls must all go to the surviving instance: \(Array(tail))")
        let head = instances.prefix(40)
        #expect(Set(head).count >= 2, "before the failures the load is shared: \(Array(head))")
        let failures = calls.filter { ($0["code"] as? String) != "OK" }.count
        var tally: [String: Int] = [:]
        for instance in instances { tally[instance, default: 0] += 1 }
        print("multi-host ping outcomes: \(tally.sorted { $0.key < $1.key })")
        #expect(failures <= 6, "only calls in flight at a failure may fail: \(failures)")
    }
}
