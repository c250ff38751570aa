#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
internal import Foundation

/// Ends a supervised child process when its supervisor is gone, so that even a supervisor
/// killed with SIGKILL leaves no process behind.
///
/// `atom up` sets `ATOM_PARENT_PID` for its children; a child whose parent changes (it was
/// re-parented to init) runs `onOrphaned`.
public enum ParentWatch {
    public static func start(onOrphaned: @escaping @Sendable () -> Void) {
        guard let text = ProcessInfo.processInfo.environment["ATOM_PARENT_PID"], let parent = Int32(text) else { return }
        let thread = Thread(named: "atom-parent-watch") {
            while getppid() == parent { usleep(250_000) }
            onOrphaned()
        }
        thread.start()
    }
}
