internal import Foundation
internal import Synchronization

/// How a host is started: the program (bwrap, or the interpreter itself), its arguments and
/// environment, and where its own output goes.
struct HostLaunch: Sendable {
    var executable: String
    var arguments: [String]
    var environment: [String: String]
    var logPath: String
    var scratch: String
}

/// Why the loader killed a host (a host that dies on its own has no reason).
enum HostKillReason: Sendable, Equatable {
    /// The execution ran past its time limit.
    case timeout
    /// The caller went away (deadline or cancellation of the RPC).
    case cancelled
    /// Stopped by the loader: unloaded, idle, evicted or shutting down.
    case stopped
    /// The host broke the protocol.
    case protocolError
}

/// A host that is gone, with what the loader knows about why.
struct HostExit: Error, Sendable {
    /// The raw wait status.
    var status: Int32
    var killReason: HostKillReason?
    /// The end of the host's own stderr (faulthandler's report of a crash, a fatal error).
    var logTail: String

    /// The signal that ended the host. bwrap reports its child's death by a signal as exit
    /// status 128 + signal, so that counts too.
    var signal: Int32? {
        if (status & 0x7F) != 0 && (status & 0x7F) != 0x7F { return status & 0x7F }
        if let code = rawExitCode, code > 128, code < 128 + 65 { return code - 128 }
        return nil
    }

    var exitCode: Int32? { signal == nil ? rawExitCode : nil }
    private var rawExitCode: Int32? { (status & 0x7F) == 0 ? (status >> 8) & 0xFF : nil }

    var summary: String {
        if let signal { return "was killed by signal \(signal) (\(Self.signalName(signal)))" }
        return "exited with status \(exitCode ?? -1)"
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGKILL: "SIGKILL"
        case SIGBUS: "SIGBUS"
        case SIGFPE: "SIGFPE"
        case SIGILL: "SIGILL"
        case SIGXCPU: "SIGXCPU, CPU time limit"
        case SIGTERM: "SIGTERM"
        default: "signal \(signal)"
        }
    }
}

/// One skill host process: a Python or Node program speaking `HostFrame`s over two pipes (fds 3
/// and 4 in the host). A dedicated thread reads its replies and reaps it, so no caller ever
/// blocks the cooperative pool; each request ends with the reply, or with `HostExit` when the
/// host dies (crash, exit, kill at a time limit).
final class HostProcess: Sendable {
    let id: Int
    let key: HostKey
    let pid: pid_t
    let launch: HostLaunch
    private let requests: Int32
    private let replies: Int32
    /// Whether the request pipe is still open; writes and the close happen under this lock, so
    /// no write ever lands on a reused descriptor number.
    private let writeLock = Mutex<Bool>(true)
    private let state = Mutex<State>(State())
    private let started = ContinuousClock.now

    private struct Pending {
        let continuation: CheckedContinuation<HostFrame, any Error>
        var timer: DispatchWorkItem?
    }

    private struct State {
        var pending: [UInt32: Pending] = [:]
        var nextRequest: UInt32 = 1
        var exit: HostExit?
        var exited = false
        var killReason: HostKillReason?
        var loaded: Set<String> = []
        var retiring = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private init(id: Int, key: HostKey, pid: pid_t, launch: HostLaunch, requests: Int32, replies: Int32) {
        self.id = id
        self.key = key
        self.pid = pid
        self.launch = launch
        self.requests = requests
        self.replies = replies
    }

    /// Starts a host (through `launcher`, whose thread outlives every host so PDEATHSIG stays armed).
    static func start(id: Int, key: HostKey, launch: HostLaunch, launcher: HostLauncher) async throws -> HostProcess {
        let (pid, requests, replies) = try await launcher.spawn(launch)
        let host = HostProcess(id: id, key: key, pid: pid, launch: launch, requests: requests, replies: replies)
        let reader = Thread(named: "atom-host-\(id)") { host.readLoop() }
        reader.stackSize = 256 << 10
        reader.start()
        return host
    }

    var isAlive: Bool { state.withLock { $0.exit == nil && $0.killReason == nil } }
    var uptime: Duration { ContinuousClock.now - started }

    func hasLoaded(_ module: String) -> Bool { state.withLock { $0.loaded.contains(module) } }

    /// Sends a request and waits for its reply. `timeout` kills the host when it passes (the
    /// request then fails with a `HostExit` whose reason is `.timeout`); so does cancellation.
    func request(_ op: HostFrame.Op, _ fields: [[UInt8]], timeout: Duration?) async throws -> HostFrame {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HostFrame, any Error>) in
                let id: UInt32? = state.withLock { state in
                    if let exit = state.exit {
                        continuation.resume(throwing: exit)
                        return nil
                    }
                    if state.killReason != nil {
                        // Killed, not reaped yet: the reader fails it with the exit.
                        let id = state.nextRequest
                        state.nextRequest &+= 1
                        state.pending[id] = Pending(continuation: continuation)
                        return nil
                    }
                    let id = state.nextRequest
                    state.nextRequest &+= 1
                    var pending = Pending(continuation: continuation)
                    if let timeout {
                        let timer = DispatchWorkItem { [weak self] in self?.kill(.timeout) }
                        pending.timer = timer
                        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)), execute: timer)
                    }
                    state.pending[id] = pending
                    return id
                }
                guard let id else { return }
                let bytes = HostFrame(op: op, requestID: id, fields: fields).encoded()
                if bytes.count > 64 << 10 {
                    // A big frame may wait for the host to drain the pipe: not on the cooperative pool.
                    DispatchQueue.global().async { if !self.write(bytes) { self.kill(.protocolError) } }
                } else if !write(bytes) {
                    kill(.protocolError)
                }
            }
        } onCancel: {
            kill(.cancelled)
        }
    }

    /// Tells the host to forget modules (no reply; frames are handled in order).
    func unload(_ modules: [String]) {
        guard !modules.isEmpty, isAlive else { return }
        state.withLock { state in for module in modules { state.loaded.remove(module) } }
        _ = write(HostFrame(op: .unload, requestID: 0, fields: modules.map { Array($0.utf8) }).encoded())
    }

    func markLoaded(_ module: String) { state.withLock { _ = $0.loaded.insert(module) } }

    /// The host asked to be replaced (a Node host holding too many ES-module versions, which
    /// Node never frees): it finishes what it is doing and is stopped when released.
    func markRetiring() { state.withLock { $0.retiring = true } }
    var isRetiring: Bool { state.withLock { $0.retiring } }

    /// SIGKILL (the whole sandbox goes with it); the reader thread reaps it and fails what is pending.
    func kill(_ reason: HostKillReason) {
        state.withLock { state in
            guard !state.exited else { return }
            if state.killReason == nil { state.killReason = reason }
            Foundation.kill(pid, SIGKILL)
        }
    }

    /// Stops the host and waits until it is reaped.
    func stop() async {
        kill(.stopped)
        await waitForExit()
    }

    func waitForExit() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.exit != nil { return true }
                state.exitWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func write(_ bytes: [UInt8]) -> Bool {
        writeLock.withLock { open in
            guard open else { return false }
            return bytes.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let written = Foundation.write(requests, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return false
                    }
                    offset += written
                }
                return true
            }
        }
    }

    // MARK: the reader thread

    private func readLoop() {
        var header = [UInt8](repeating: 0, count: 4)
        while readExact(&header, count: 4) {
            let size = Int(HostFrame.read(header, 0))
            guard size <= HostFrame.maxBody else {
                kill(.protocolError)
                break
            }
            var body = [UInt8](repeating: 0, count: size)
            guard readExact(&body, count: size), let frame = HostFrame.decode(body) else {
                kill(.protocolError)
                break
            }
            guard frame.op != .ready else { continue }
            let pending = state.withLock { $0.pending.removeValue(forKey: frame.requestID) }
            pending?.timer?.cancel()
            pending?.continuation.resume(returning: frame)
        }
        close(replies)
        writeLock.withLock { open in
            close(requests)
            open = false
        }
        // Wait without reaping, then reap under the lock: `kill` never hits a reused pid.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
        var status: Int32 = 0
        let (pending, waiters, exit): ([Pending], [CheckedContinuation<Void, Never>], HostExit) = state.withLock { state in
            var result = waitpid(pid, &status, 0)
            while result == -1 && errno == EINTR { result = waitpid(pid, &status, 0) }
            state.exited = true
            let exit = HostExit(status: status, killReason: state.killReason, logTail: Self.tail(of: launch.logPath))
            state.exit = exit
            let pending = Array(state.pending.values)
            state.pending = [:]
            let waiters = state.exitWaiters
            state.exitWaiters = []
            return (pending, waiters, exit)
        }
        for entry in pending {
            entry.timer?.cancel()
            entry.continuation.resume(throwing: exit)
        }
        try? FileManager.default.removeItem(atPath: launch.logPath)
        try? FileManager.default.removeItem(atPath: launch.scratch)
        for waiter in waiters { waiter.resume() }
    }

    private func readExact(_ buffer: inout [UInt8], count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let got = buffer.withUnsafeMutableBytes { Foundation.read(replies, $0.baseAddress! + offset, count - offset) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else { return false }
            offset += got
        }
        return true
    }

    /// The last 4 KiB of a host's log.
    static func tail(of path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let end = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: end > 4096 ? end - 4096 : 0)
        let data = (try? handle.readToEnd()) ?? Data()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// A thread that lives as long as the loader and starts every host. PR_SET_PDEATHSIG (bwrap's
/// --die-with-parent, setpriv's --pdeathsig) fires when the *thread* that started a process
/// exits, so hosts must not be started from pool threads that may come and go.
final class HostLauncher: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []

    init() {
        let thread = Thread(named: "atom-launcher") { [condition] in
            while true {
                condition.lock()
                while self.jobs.isEmpty { condition.wait() }
                let job = self.jobs.removeFirst()
                condition.unlock()
                job()
            }
        }
        thread.start()
    }

    /// Starts a host with its pipes; returns its pid and the loader's ends (requests to write,
    /// replies to read). Pipes are made on this thread too, and marked close-on-exec before any
    /// other process is started, so no host inherits another's pipe.
    func spawn(_ launch: HostLaunch) async throws -> (pid_t, Int32, Int32) {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            jobs.append {
                var toHost: [Int32] = [0, 0], fromHost: [Int32] = [0, 0]
                guard pipe(&toHost) == 0 else {
                    continuation.resume(throwing: LoaderError(.internal, "cannot create a pipe: errno \(errno)"))
                    return
                }
                guard pipe(&fromHost) == 0 else {
                    close(toHost[0]); close(toHost[1])
                    continuation.resume(throwing: LoaderError(.internal, "cannot create a pipe: errno \(errno)"))
                    return
                }
                // The child's ends move to 3 and 4: keep them clear of those numbers first.
                let childIn = fcntl(toHost[0], F_DUPFD_CLOEXEC, 10), childOut = fcntl(fromHost[1], F_DUPFD_CLOEXEC, 10)
                close(toHost[0]); close(fromHost[1])
                let requests = fcntl(toHost[1], F_DUPFD_CLOEXEC, 10), replies = fcntl(fromHost[0], F_DUPFD_CLOEXEC, 10)
                close(toHost[1]); close(fromHost[0])
                defer { close(childIn); close(childOut) }
                do {
                    let pid = try Self.posixSpawn(launch, childIn: childIn, childOut: childOut)
                    continuation.resume(returning: (pid, requests, replies))
                } catch {
                    close(requests); close(replies)
                    continuation.resume(throwing: error)
                }
            }
            condition.signal()
            condition.unlock()
        }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), looked up at run time:
    /// Swift's Glibc module does not declare it.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    private static func posixSpawn(_ launch: HostLaunch, childIn: Int32, childOut: Int32) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, launch.logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_adddup2(&actions, childIn, 3)
        posix_spawn_file_actions_adddup2(&actions, childOut, 4)
        // Nothing else: descriptors other code of this process opened without close-on-exec (a
        // Foundation Pipe, say) must not live on in a host. A host holding a pipe's write end
        // keeps that pipe's reader from ever seeing its end (a test run hung on exactly that).
        if let closeFrom = Self.closeFrom, closeFrom(&actions, 5) != 0 {
            throw LoaderError(.internal, "cannot prepare the host's descriptors: errno \(errno)")
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGXCPU, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        // Its own process group: a Ctrl-C in the loader's terminal is the loader's to handle.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))
        let argv: [UnsafeMutablePointer<CChar>?] = ([launch.executable] + launch.arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = launch.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, launch.executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw LoaderError(.failedPrecondition, "cannot start the skill host \(launch.executable): \(String(cString: strerror(result)))")
        }
        return pid
    }
}
