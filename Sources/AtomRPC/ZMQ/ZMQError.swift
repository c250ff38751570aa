internal import CZeroMQ

/// A failed libzmq call, mirrored as a Swift value: the errno and libzmq's text for it.
public struct ZMQError: Error, Sendable, Hashable, CustomStringConvertible {
    public let errno: Int32
    public let operation: String

    public var description: String {
        "\(operation): \(String(cString: zmq_strerror(errno))) (errno \(errno))"
    }

    /// The error of the last failed libzmq call on this thread.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(errno: zmq_errno(), operation: operation)
    }

    /// The peer's queue is full (or, with ZMQ_IMMEDIATE, no connection is complete yet).
    public var isWouldBlock: Bool { errno == atom_zmq_eagain() }
    /// A ROUTER_MANDATORY send to a peer that is gone.
    public var isHostUnreachable: Bool { errno == atom_zmq_ehostunreach() }
    public var isInterrupted: Bool { errno == atom_zmq_eintr() }
    public var isTerminated: Bool { errno == atom_zmq_eterm() }
}
