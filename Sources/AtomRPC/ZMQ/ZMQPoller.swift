internal import CZeroMQ

/// `zmq_poll` over libzmq sockets and plain file descriptors, for one reactor thread.
public struct ZMQPoller {
    public enum Source {
        case socket(ZMQSocket)
        case fileDescriptor(Int32)
    }

    private var items: [zmq_pollitem_t] = []

    public init(_ sources: [Source]) {
        items = sources.map { source in
            var item = zmq_pollitem_t()
            switch source {
            case .socket(let socket): item.socket = socket.handle
            case .fileDescriptor(let fd): item.fd = fd
            }
            item.events = Int16(ZMQ_POLLIN)
            return item
        }
    }

    /// Waits until a source is readable or the timeout passes (-1 waits forever).
    /// Returns, per source, whether it is readable. EINTR counts as a timeout.
    public mutating func poll(timeoutMs: Int) throws -> [Bool] {
        let count = items.count
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32(count), timeoutMs) }
        if rc < 0 {
            let error = ZMQError.last("zmq_poll")
            if error.isInterrupted { return Array(repeating: false, count: count) }
            throw error
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
