public import Foundation

/// Whether a child process has exited, without trusting Foundation's `Process` alone: under
/// concurrent launches it was seen to miss a child's exit (its `isRunning` stayed true and
/// `terminationHandler` never ran), which would hang a supervisor or a test. The kernel's view
/// decides.
public enum ChildLiveness {
    /// Whether a child of this process has exited, without reaping it (`waitid` with
    /// `WNOWAIT`): no file to read, so a supervisor can ask often. ECHILD means it is reaped
    /// already (by Foundation), so exited too.
    static func childHasExited(_ pid: Int32) -> Bool {
        var info = siginfo_t()
        if waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == -1 {
            return errno == ECHILD
        }
        #if canImport(Glibc)
        return info._sifields._sigchld.si_pid == pid
        #else
        return info.si_pid == pid
        #endif
    }

    /// Whether `process` (a child of this process) is still running, by Foundation's account
    /// and the kernel's.
    public static func isRunning(_ process: Process) -> Bool {
        process.isRunning && !childHasExited(process.processIdentifier)
    }

    /// The exit status of an exited `process`: Foundation's when it saw the exit; otherwise
    /// reaped here (a zombie Foundation missed), or -1 when unknown.
    public static func status(_ process: Process) -> Int32 {
        // Give Foundation a moment to reap the child itself: reaping it here too early would
        // take the exit away from Foundation's own bookkeeping.
        for _ in 0..<20 where process.isRunning { usleep(10_000) }
        // Then, for up to 5 s: Foundation's account, or reap it here. waitpid says 0 while the
        // exit is still in progress (a zombie leader whose other threads are being torn down)
        // and ECHILD when Foundation reaped it and has yet to record the status: on a loaded
        // machine (load average above 8) both outlasted the 200 ms above.
        for _ in 0..<500 {
            if !process.isRunning { return process.terminationStatus }
            var status: Int32 = 0
            let reaped = waitpid(process.processIdentifier, &status, WNOHANG)
            if reaped == process.processIdentifier {
                // WIFEXITED: the low 7 bits are 0; WEXITSTATUS: the next 8.
                return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            }
            if reaped == -1 && errno != ECHILD && errno != EINTR { break }
            usleep(10_000)
        }
        return -1
    }
}

/// The fields of a `/proc/<pid>/stat` line from field 3 (the state) on. The command name
/// (field 2) is in parentheses and may hold spaces and parentheses itself, so the fields are
/// counted after its last `)`.
enum ProcStat {
    static func read(_ pid: Int32) -> String? {
        try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    }

    /// `fields[0]` is field 3 of the line, so field n is `fields[n - 3]`.
    static func fields(_ stat: String) -> [Substring]? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }
}

/// Which process started which, from `/proc`.
enum ParentProcess {
    /// The parent of `pid` (field 4 of `/proc/<pid>/stat`), or nil when `pid` is gone or there
    /// is no `/proc`.
    static func of(_ pid: Int32) -> Int32? {
        ProcStat.read(pid).flatMap(parent(stat:))
    }

    static func parent(stat: String) -> Int32? {
        guard let fields = ProcStat.fields(stat), fields.count > 1 else { return nil }
        return Int32(fields[1])
    }
}
