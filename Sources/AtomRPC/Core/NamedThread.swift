#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Foundation

extension Thread {
    /// A thread whose name the system shows (`top -H`, `ps -L`, `perf`, /proc/*/task/*/comm).
    /// Foundation's `name` does not reach the kernel here: these threads showed up as
    /// "oot.default-qos". Linux keeps 15 bytes of it.
    ///
    /// `onMessagePath`: a reactor or another thread every message waits for; it asks for the
    /// short scheduler slice of `ReactorScheduling` as it starts.
    public convenience init(named name: String, onMessagePath: Bool = false, _ body: @escaping @Sendable () -> Void) {
        self.init {
            if onMessagePath { ReactorScheduling.applyToCurrentThread() }
            #if canImport(Glibc)
            // pthread_setname_np is not visible to Swift's Glibc module; this file is its Linux spelling.
            let fd = open("/proc/thread-self/comm", O_WRONLY)
            if fd >= 0 {
                let bytes = Array(name.utf8.prefix(15))
                _ = bytes.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
            #endif
            body()
        }
        self.name = name
    }
}
