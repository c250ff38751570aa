internal import Foundation

/// What a finished subprocess printed and how it ended.
struct ProcessOutcome: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool
    /// From start to exit.
    var wall: Duration = .zero
    /// User + system CPU time of the child and of the descendants it waited for (`wait4`).
    var cpu: Duration = .zero

    var succeeded: Bool { status == 0 && !timedOut }

    /// The last lines of stderr (or stdout), for error messages.
    var tail: String {
        let text = stderr.isEmpty ? stdout : stderr
        let lines = text.split(separator: "\n").suffix(12)
        return lines.joined(separator: "\n")
    }
}

/// Runs a program without blocking the cooperative pool: `posix_spawn`, then a thread of its
/// own blocks in `wait4` and resumes the awaiting task. Output goes to files (no pipe can fill
/// up and stall the child, and no thread blocks reading it).
///
/// Not Foundation's `Process`: under many concurrent launches in one process its termination
/// notification was seen to go missing here (a test run hung with no child left alive).
enum Subprocess {
    struct LaunchFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        directory: String? = nil, timeout: Duration = .seconds(600), niceness: Int32 = 0
    ) async throws -> ProcessOutcome {
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        let base = NSTemporaryDirectory() + "atom-installer-\(UUID().uuidString)"
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        let started = ContinuousClock.now
        let child = try spawn(executable, arguments, environment: variables, directory: directory, stdout: outPath, stderr: errPath)
        // A lower priority for work off the critical path: set right after the spawn, before the
        // child has started the threads that inherit it (best effort; a failure changes nothing).
        if niceness > 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(child.pid), niceness) }
        let (status, cpu): (Int32, Duration) = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<(Int32, Duration), Never>) in
                let waiter = Thread(named: "atom-subprocess-wait") {
                    var status: Int32 = 0
                    var usage = rusage()
                    var result = wait4(child.pid, &status, 0, &usage)
                    while result == -1 && errno == EINTR { result = wait4(child.pid, &status, 0, &usage) }
                    child.markExited()
                    let cpu = Duration.seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                        + .microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
                    // Someone else reaped the child (ECHILD): its outcome is unknown, so never success.
                    continuation.resume(returning: result == child.pid ? (status, cpu) : (Int32(255 << 8), .zero))
                }
                waiter.start()
                // The hard limit: SIGKILL when the child runs too long.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout / .milliseconds(1)))) {
                    if child.killIfRunning() { child.timedOut.set() }
                }
            }
        } onCancel: {
            _ = child.killIfRunning()
        }
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        // Exit code, or 128 + signal like a shell.
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return ProcessOutcome(
            status: code, stdout: stdout, stderr: stderr, timedOut: child.timedOut.value, wall: ContinuousClock.now - started, cpu: cpu)
    }

    /// A running child: its pid, and whether it was reaped (so a late kill never hits a reused pid).
    final class Child: @unchecked Sendable {
        let pid: pid_t
        let timedOut = TimeoutFlag()
        private let lock = NSLock()
        private var exited = false

        init(pid: pid_t) { self.pid = pid }

        func markExited() { lock.withLock { exited = true } }

        func killIfRunning() -> Bool {
            lock.withLock {
                guard !exited else { return false }
                kill(pid, SIGKILL)
                return true
            }
        }
    }

    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addChdir: AddChdir? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: AddChdir.self) }

    static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], directory: String?, stdout: String, stderr: String) throws -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Services ignore SIGINT/SIGTERM for their own handling; children get the defaults back.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        // The working directory: glibc's posix_spawn_file_actions_addchdir_np (2.29 and later,
        // looked up at run time: Swift's Glibc module does not declare it); without it,
        // `sh -c 'cd "$0" && exec "$@"'` (one more process per run; no quoting involved).
        var program = executable
        var command = [executable] + arguments
        if let directory {
            if let addChdir = Self.addChdir {
                let failed = directory.withCString { addChdir(&actions, $0) }
                guard failed == 0 else {
                    throw LaunchFailure(description: "cannot start \(executable) in \(directory): \(String(cString: strerror(failed)))")
                }
            } else {
                program = "/bin/sh"
                command = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
            }
        }
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw LaunchFailure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return Child(pid: pid)
    }

    /// The absolute path of `name` on PATH.
    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    func set() { lock.withLock { fired = true } }
    var value: Bool { lock.withLock { fired } }
}
