internal import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lets async code wake a reactor thread that waits in `ReactorWait`: the reactor waits on
/// `readFD`; `signal()` makes it readable until the reactor calls `drain()`.
///
/// On Linux it is an eventfd: one write to signal and one read to drain, whatever the number
/// of signals in between (a pipe needs a read per 256 bytes, and a second read to learn that
/// it is empty). Elsewhere it is a pipe. Both ends are non-blocking, so a signaller never
/// blocks, and a signal sent while the reactor is awake is seen on its next wait.
public final class WakeSignal: @unchecked Sendable {
    public let readFD: Int32
    private let writeFD: Int32

    public init() {
        #if os(Linux)
        let fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard fd >= 0 else { fatalError("eventfd() failed: errno \(errno)") }
        readFD = fd
        writeFD = fd
        #else
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("pipe() failed: errno \(errno)") }
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        #endif
    }

    deinit {
        close(readFD)
        if writeFD != readFD { close(writeFD) }
    }

    public func signal() {
        #if os(Linux)
        var one: UInt64 = 1
        _ = write(writeFD, &one, MemoryLayout<UInt64>.size)
        #else
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
        #endif
    }

    /// Clears the signal; called by the reactor after its wait reported it.
    public func drain() {
        #if os(Linux)
        var count: UInt64 = 0
        _ = read(readFD, &count, MemoryLayout<UInt64>.size)
        #else
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(readFD, &buffer, buffer.count) > 0 {}
        #endif
    }
}
