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
/// own blocks in `wait4` and resumes the awaiting task. Output goes to unnamed files
/// (`OutputCapture`: no pipe can fill up and stall the child, no thread blocks reading it, and
/// nothing is left on disk whatever happens to this process).
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
        let output = try OutputCapture(), errors = try OutputCapture()
        let started = ContinuousClock.now
        let child = try spawn(executable, arguments, environment: variables, directory: directory, stdout: output.descriptor, stderr: errors.descriptor)
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
        let stdout = output.contents()
        let stderr = errors.contents()
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

    static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], directory: String?, stdout: Int32, stderr: Int32) throws -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
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

/// A file a child writes its stdout or stderr to, without a name: created, opened and unlinked
/// at once, and read back through the descriptor. Named files were removed after the child
/// ended, so a process killed while its child ran (a service stopped mid-install) left them
/// behind: hundreds had piled up in /tmp on one test machine.
final class OutputCapture: @unchecked Sendable {
    let descriptor: Int32

    init() throws {
        let path = NSTemporaryDirectory() + "atom-subprocess-\(UUID().uuidString)"
        // Close-on-exec: only the child it is given to (as its fd 1 or 2) may write to it.
        var descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw Subprocess.LaunchFailure(description: "cannot create a file for a child's output in \(NSTemporaryDirectory()): \(reason)")
        }
        unlink(path)
        // In a process started with stdin, stdout or stderr closed, the file could get one of
        // those numbers, and the child's dup2 onto the same number would keep close-on-exec.
        if descriptor <= 2 {
            let moved = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
            let failure = errno
            close(descriptor)
            guard moved >= 0 else {
                throw Subprocess.LaunchFailure(description: "cannot set up a child's output: \(String(cString: strerror(failure)))")
            }
            descriptor = moved
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Everything written so far, as text (bytes that are not UTF-8 are replaced, not dropped).
    func contents() -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var offset: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
            offset += off_t(count)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    func set() { lock.withLock { fired = true } }
    var value: Bool { lock.withLock { fired } }
}
