internal import CZeroMQ
internal import Synchronization

/// A libzmq context. Thread-safe by libzmq's contract; terminated when the last reference goes.
///
/// Sockets keep their context alive, and every socket is created with LINGER 0, so termination
/// never blocks on unsent messages.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// Whether libzmq has started this context's I/O thread (with its first socket).
    private let ioThreadStarted = Atomic<Bool>(false)

    public init() {
        guard let handle = zmq_ctx_new() else {
            fatalError("zmq_ctx_new failed: \(ZMQError.last("zmq_ctx_new"))")
        }
        // One I/O thread is plenty at our message rates on a 2-core machine.
        zmq_ctx_set(handle, ZMQ_IO_THREADS, 1)
        self.handle = handle
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == atom_zmq_eintr() {}
    }

    /// A new libzmq socket. libzmq starts the context's I/O thread with its first socket, on the
    /// creating thread, and the new thread inherits that thread's scheduling: the first socket is
    /// made with the short slice of `ReactorScheduling` held for that moment, so the I/O thread,
    /// which every message of the process passes through, has it too.
    func makeSocket(_ type: Int32) -> UnsafeMutableRawPointer? {
        if ioThreadStarted.load(ordering: .acquiring) { return zmq_socket(handle, type) }
        let socket = ReactorScheduling.withSliceOnCurrentThread { zmq_socket(handle, type) }
        if socket != nil { ioThreadStarted.store(true, ordering: .releasing) }
        return socket
    }

    /// The process-wide context most code shares.
    public static let shared = ZMQContext()

    /// libzmq's version, like "4.3.4".
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
