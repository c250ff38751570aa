internal import ArgumentParser
internal import AtomAPI
internal import AtomProto
internal import AtomRPC
internal import Foundation

/// `atom up`: start the gateway and every service as supervised child processes.
struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start the gateway and every service; stop them all on Ctrl-C or SIGTERM.",
        discussion: """
            State lives under ATOM_HOME (default ~/.atom); the gateway listens on ATOM_GATEWAY \
            (default \(AtomEnvironment.defaultGateway)). With --detach, returns once every service \
            reports healthy and leaves the stack running; `atom down` stops it.
            """)

    @OptionGroup var options: GatewayOptions

    @Flag(name: .long, help: "Run in the background and return once every service is healthy.")
    var detach = false

    @Option(name: .long, help: "Seconds --detach waits for the stack to become healthy.", transform: SecondsArgument.parse)
    var readyTimeout: Double = 60

    /// Set on the background supervisor that --detach starts.
    @Flag(name: .customLong("supervisor"), help: .hidden)
    var backgroundSupervisor = false

    func run() async throws {
        try await reportingFailures(json: options.json) { try await start() }
    }

    private func start() async throws {
        let environment = try options.environment()
        let files = StackFiles(home: environment.home)
        do {
            try files.prepare()
        } catch {
            throw CLIFailure(.failure, "cannot create \(environment.home): \(error)")
        }
        if backgroundSupervisor {
            try await supervise(environment, files: files, detached: true)
        } else if let pid = files.runningSupervisor() {
            fail(CLIFailure(.failure, "a stack is already running for \(environment.home) (pid \(pid)); `atom down` stops it"))
        } else if let problem = Self.tcpEndpointTaken(environment.gateway) {
            fail(CLIFailure(.failure, "cannot listen on \(environment.gateway): \(problem); another stack or program holds it: `atom down` that stack (with its ATOM_HOME) or set ATOM_GATEWAY to another endpoint"))
        } else if detach {
            try await startDetached(environment, files: files)
        } else {
            try await supervise(environment, files: files, detached: false)
        }
    }

    /// Why a TCP endpoint cannot be listened on now (in use, no such address), found by binding
    /// it for a moment on a context of its own, whose end closes the listener before this
    /// returns; nil when it can be. Only TCP: binding an ipc path that a running gateway listens
    /// on would take the path from it.
    static func tcpEndpointTaken(_ endpoint: String) -> String? {
        guard endpoint.hasPrefix("tcp://") else { return nil }
        do {
            let socket = try ZMQSocket(.router, context: ZMQContext())
            defer { socket.close() }
            try socket.bind(endpoint)
            return nil
        } catch {
            return "\(error)"
        }
    }

    private func fail(_ failure: CLIFailure) -> Never {
        FileHandle.standardError.write(Data("atom: \(failure.message)\n".utf8))
        if options.json { try? printJSONLine(failure.jsonView) }
        Foundation.exit(failure.status.rawValue)
    }

    /// The services connect to the gateway over a Unix socket under ATOM_HOME (far cheaper per
    /// message than TCP loopback, and private to the user); the gateway listens there besides
    /// ATOM_GATEWAY, where the CLI and any other host connect. Nil when ATOM_GATEWAY is itself an
    /// ipc endpoint, or when the path would be too long for a Unix socket.
    private func localGateway(_ environment: AtomEnvironment) -> String? {
        guard !environment.gateway.hasPrefix("ipc://") else { return nil }
        return AtomEnvironment.localGatewayEndpoint(home: environment.home)
    }

    /// The gateway listens on the local endpoint as well as on ATOM_GATEWAY.
    private func childOverrides(_ environment: AtomEnvironment) -> [String: [String: String]] {
        guard let local = localGateway(environment) else { return [:] }
        return ["gateway": ["ATOM_GATEWAY": environment.gateway, "ATOM_GATEWAY_LOCAL": local]]
    }

    private func childEnvironment(_ environment: AtomEnvironment) -> [String: String] {
        var variables = ProcessInfo.processInfo.environment
        variables["ATOM_GATEWAY"] = localGateway(environment) ?? environment.gateway
        variables["ATOM_HOME"] = environment.home
        variables["ATOM_PARENT_PID"] = String(getpid())
        // The marketplace imports the bundled catalog at start (same versions change nothing),
        // unless the environment or the config file names another seed.
        let configured = (try? AtomSettings.resolve().values["MARKETPLACE_SEED_PATH"]) ?? nil
        if configured == nil, let skills = BundledSkills.locate() {
            variables["MARKETPLACE_SEED_PATH"] = skills
        }
        return variables
    }

    /// The foreground supervisor (also what the detached background process runs).
    private func supervise(_ environment: AtomEnvironment, files: StackFiles, detached: Bool) async throws {
        if detached { setsid() }
        try? String(getpid()).write(toFile: files.pidFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: files.pidFile) }
        let json = options.json && !detached
        let supervisor = Supervisor(
            components: StackComponent.all, environment: childEnvironment(environment), overrides: childOverrides(environment)
        ) { line in
            let stamp = ISO8601DateFormatter().string(from: Date())
            FileHandle.standardError.write(Data("[atom up \(stamp)] \(line)\n".utf8))
        }
        let signals = SignalHandler { count in
            if count == 1 { supervisor.stop() } else { supervisor.killAll() }
        }
        let announcer = Task {
            let ready = await waitUntilHealthy(environment, timeout: .seconds(readyTimeout), owner: getpid())
            guard !Task.isCancelled, !detached else { return }
            if ready == nil {
                if json {
                    try? printJSON(UpView(endpoint: environment.gateway, home: environment.home, pid: getpid(), services: StackComponent.all.compactMap(\.service), detached: false))
                } else {
                    print("atom: stack is up at \(environment.gateway) (home \(environment.home)); Ctrl-C stops it")
                }
            }
        }
        let fatal = await supervisor.run()
        announcer.cancel()
        withExtendedLifetime(signals) {}
        if let fatal { fail(CLIFailure(.failure, fatal)) }
    }

    private func startDetached(_ environment: AtomEnvironment, files: StackFiles) async throws {
        _ = FileManager.default.createFile(atPath: files.supervisorLog, contents: nil)
        guard let log = FileHandle(forWritingAtPath: files.supervisorLog) else {
            throw CLIFailure(.failure, "cannot write \(files.supervisorLog)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ExecutableLocator.selfPath)
        var arguments = ["up", "--supervisor", "--gateway", environment.gateway]
        if options.json { arguments.append("--json") }
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        variables["ATOM_HOME"] = environment.home
        process.environment = variables
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw CLIFailure(.failure, "cannot start the background supervisor: \(error)")
        }
        let problem = await waitUntilHealthy(environment, timeout: .seconds(readyTimeout), owner: process.processIdentifier, supervisor: process)
        if let problem {
            if ChildLiveness.isRunning(process) { kill(process.processIdentifier, SIGTERM) }
            let tail = (try? String(contentsOfFile: files.supervisorLog, encoding: .utf8))?
                .split(separator: "\n").suffix(15).joined(separator: "\n") ?? ""
            fail(CLIFailure(.unhealthy, "the stack did not become healthy: \(problem)\nlast lines of \(files.supervisorLog):\n\(tail)"))
        }
        if options.json {
            try printJSON(UpView(endpoint: environment.gateway, home: environment.home, pid: process.processIdentifier, services: StackComponent.all.compactMap(\.service), detached: true))
        } else {
            print("atom: stack is up at \(environment.gateway) (supervisor pid \(process.processIdentifier), logs in \(files.logDirectory)); `atom down` stops it")
        }
    }

    /// Polls the gateway until every service of the stack has a SERVING instance that `owner`
    /// (the supervisor) started. Returns nil when healthy, otherwise what was still wrong when
    /// time ran out (or the supervisor exited). Instances started by anyone else do not count:
    /// a second stack given the endpoint of a running one would otherwise take that stack's
    /// health for its own and report success while its own gateway could not listen.
    private func waitUntilHealthy(_ environment: AtomEnvironment, timeout: Duration, owner: Int32, supervisor: Process? = nil) async -> String? {
        let deadline = ContinuousClock.now + timeout
        let expected = Set(StackComponent.all.compactMap(\.service))
        var problem = "the gateway at \(environment.gateway) did not answer"
        guard let security = try? environment.clientSecurity(),
              let client = try? RPCClient(endpoint: environment.gateway, name: "atom-up", security: security)
        else { return problem }
        defer { client.close() }
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if let supervisor, !ChildLiveness.isRunning(supervisor) {
                return "the supervisor exited with status \(ChildLiveness.status(supervisor))"
            }
            do {
                let health = try await GatewayClient(client).health(GatewayHealthRequest(), options: CallOptions(timeout: .seconds(2)))
                let host = HostInfo.hostname
                let ours = Set(health.services.filter { service in
                    service.instances.contains { $0.status == .serving && $0.host == host && ParentProcess.of(Int32(bitPattern: $0.pid)) == owner }
                }.map(\.service))
                let missing = expected.subtracting(ours)
                if missing.isEmpty { return nil }
                let others = missing.filter { name in health.services.contains { $0.service == name && $0.status == .serving } }
                problem = others.isEmpty
                    ? "not serving yet: \(missing.sorted().joined(separator: ", "))"
                    : "the gateway at \(environment.gateway) answers with instances this stack did not start (\(others.sorted().joined(separator: ", "))): is another stack using that endpoint?"
            } catch {
                problem = "\(error)"
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return problem
    }
}

/// The JSON shape of `atom up --json`.
struct UpView: Encodable {
    let endpoint: String
    let home: String
    let pid: Int32
    let services: [String]
    let detached: Bool
}

/// `atom down`: stop the stack that `atom up` (usually with --detach) started.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Stop the stack started by `atom up --detach` (no process is left behind).")

    @OptionGroup var options: GatewayOptions

    func run() async throws {
        try await reportingFailures(json: options.json) { try await stop() }
    }

    private func stop() async throws {
        let environment = try options.environment()
        let files = StackFiles(home: environment.home)
        guard let pid = files.runningSupervisor() else {
            try? FileManager.default.removeItem(atPath: files.pidFile)
            if options.json { try printJSON(["stopped": false]) } else { print("atom: no stack is running for \(environment.home)") }
            return
        }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline, kill(pid, 0) == 0, files.runningSupervisor() != nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        if files.runningSupervisor() != nil {
            kill(pid, SIGKILL)
            throw CLIFailure(.failure, "the stack (pid \(pid)) did not stop within 20 s and was killed")
        }
        if options.json { try printJSON(["stopped": true]) } else { print("atom: stack stopped (pid \(pid))") }
    }
}
