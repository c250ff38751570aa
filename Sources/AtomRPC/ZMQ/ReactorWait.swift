internal import CZeroMQ
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a reactor thread waits for its socket and its wake-up signal.
///
/// `zmq_poll` asks libzmq whether the socket is ready, polls every descriptor with a zero
/// timeout, asks again, and only then blocks in a second poll that registers every descriptor
/// anew: four or more syscalls per wait on the path of every message. This asks libzmq once
/// (`ZMQ_EVENTS`) and otherwise blocks in one `epoll_wait` on the socket's notification
/// descriptor (`ZMQ_FD`) and the wake-up signal, registered once.
///
/// `ZMQ_FD` is a notification, not readiness: it becomes readable when libzmq has new commands
/// for the socket (a message arrived, a peer came or went), and draining it is libzmq's
/// business. Asking `ZMQ_EVENTS` immediately before blocking is what makes waiting on it safe:
/// that processes every command already signalled (any send or receive may have consumed a
/// notification while handling its own), so the descriptor can only become readable again
/// through something new.
///
/// Confined to the reactor thread that owns the socket, like the socket itself.
public final class ReactorWait {
    /// What a wait found: the socket may have messages (receive until EAGAIN; libzmq also
    /// signals work that is not a message, such as a connection, so this can be true with
    /// nothing to receive), and whether the wake-up signal fired (it is drained already).
    public struct Readiness {
        public var socket: Bool
        public var wake: Bool
        /// The socket or the wait itself failed (the socket was closed, the context ended):
        /// waiting again would fail again at once, so the reactor must stop.
        public var failed = false
    }

    private let socket: ZMQSocket
    private let wake: WakeSignal
    /// `socket.operations` when ZMQ_EVENTS last found no message; nil when it last found one.
    private var idleAt: UInt64?
    #if os(Linux)
    private let epollFD: Int32
    #else
    private let socketFD: Int32
    #endif

    public init(socket: ZMQSocket, wake: WakeSignal) throws {
        self.socket = socket
        self.wake = wake
        var fd: Int32 = -1
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(socket.handle, ZMQ_FD, &fd, &size) == 0 else { throw ZMQError.last("zmq_getsockopt(ZMQ_FD)") }
        #if os(Linux)
        let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw ZMQError(errno: errno, operation: "epoll_create1") }
        for watched in [fd, wake.readFD] {
            var event = epoll_event()
            event.events = EPOLLIN.rawValue
            event.data.fd = watched
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, watched, &event) == 0 else {
                let failure = ZMQError(errno: errno, operation: "epoll_ctl")
                close(epollFD)
                throw failure
            }
        }
        self.epollFD = epollFD
        #else
        socketFD = fd
        #endif
    }

    deinit {
        #if os(Linux)
        close(epollFD)
        #endif
    }

    /// Whether a message is waiting (nil when the socket failed); also lets libzmq process
    /// its pending commands.
    private func socketHasMessage() -> Bool? {
        var events: Int32 = 0
        var size = MemoryLayout<Int32>.size
        guard zmq_getsockopt(socket.handle, ZMQ_EVENTS, &events, &size) == 0 else {
            return ZMQError.last("zmq_getsockopt(ZMQ_EVENTS)").isInterrupted ? false : nil
        }
        return events & Int32(ZMQ_POLLIN) != 0
    }

    /// Returns at once when a message is waiting; otherwise waits up to `timeoutMs` (-1:
    /// forever, 0: not at all) for one, or for the wake-up signal. EINTR counts as a timeout.
    public func wait(timeoutMs: Int) -> Readiness {
        var woken = false
        #if os(Linux)
        if timeoutMs == 0 && idleAt == socket.operations {
            // A poll (an idle reactor's, see `IdlePoll`) of a socket that was found idle and
            // has not been used since: libzmq has taken in no notification since then, so its
            // descriptor alone tells whether anything came. One epoll_wait, instead of the
            // mailbox check behind ZMQ_EVENTS (a poll and a getpid), on every turn of the poll.
            let polled = epoll(timeoutMs: 0)
            if polled.failed || !polled.socket { return polled }
            woken = polled.wake
        }
        #endif
        switch socketHasMessage() {
        case true?:
            idleAt = nil
            return Readiness(socket: true, wake: woken)
        case nil:
            return Readiness(socket: false, wake: woken, failed: true)
        case false?:
            idleAt = socket.operations
        }
        guard timeoutMs != 0 else { return Readiness(socket: false, wake: woken) }
        #if os(Linux)
        var readiness = epoll(timeoutMs: timeoutMs)
        #else
        var readiness = Readiness(socket: false, wake: false)
        var fds = [pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        let count = poll(&fds, 2, Int32(clamping: timeoutMs))
        if count < 0 && errno != EINTR { readiness.failed = true }
        if count > 0 {
            readiness.socket = fds[0].revents != 0
            readiness.wake = fds[1].revents != 0
        }
        if readiness.wake { wake.drain() }
        #endif
        readiness.wake = readiness.wake || woken
        return readiness
    }

    #if os(Linux)
    /// One epoll_wait on the socket's notification descriptor and the wake-up signal (drained
    /// when it fired). `socket` means libzmq has news, not necessarily a message.
    private func epoll(timeoutMs: Int) -> Readiness {
        var readiness = Readiness(socket: false, wake: false)
        var events = (epoll_event(), epoll_event())
        let count = withUnsafeMutableBytes(of: &events) { buffer in
            epoll_wait(epollFD, buffer.baseAddress!.assumingMemoryBound(to: epoll_event.self), 2, Int32(clamping: timeoutMs))
        }
        if count < 0 && errno != EINTR { readiness.failed = true }
        // At most two events, read in place (no array on the path of every wait).
        func note(_ event: epoll_event) {
            if event.data.fd == wake.readFD { readiness.wake = true } else { readiness.socket = true }
        }
        if count >= 1 { note(events.0) }
        if count >= 2 { note(events.1) }
        if readiness.wake { wake.drain() }
        return readiness
    }
    #endif
}
