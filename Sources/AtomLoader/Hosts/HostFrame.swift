/// The frames between the loader and a skill host (runtime/python/atom_host.py,
/// runtime/node/atom_host.js): a u32 little-endian length, then the body: one op byte, a u32
/// request id, then fields, each a u32 length and bytes.
struct HostFrame: Sendable {
    enum Op: UInt8, Sendable {
        /// loader -> host: load (module name, skill folder, entry file, function).
        case load = 0x4C  // L
        /// loader -> host: execute (module name, inputs JSON, CPU seconds or empty).
        case execute = 0x58  // X
        /// loader -> host: forget modules (no reply).
        case unload = 0x55  // U
        /// loader -> host: ping.
        case ping = 0x50  // P
        /// host -> loader: ready (pid, runtime version), sent once at start.
        case ready = 0x52  // R
        /// host -> loader: success (load: logs; execute: outputs JSON, logs).
        case ok = 0x4F  // O
        /// host -> loader: failure (type, message, traceback, kind, logs).
        case failure = 0x46  // F
    }

    /// The largest frame either side accepts: the RPC payload limit plus room for logs.
    static let maxBody = 6 << 20

    var op: Op
    var requestID: UInt32
    var fields: [[UInt8]]

    func encoded() -> [UInt8] {
        let size = 5 + fields.reduce(0) { $0 + 4 + $1.count }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + size)
        Self.append(UInt32(size), to: &bytes)
        bytes.append(op.rawValue)
        Self.append(requestID, to: &bytes)
        for field in fields {
            Self.append(UInt32(field.count), to: &bytes)
            bytes.append(contentsOf: field)
        }
        return bytes
    }

    /// Decodes a body (without its length prefix); nil when it is malformed.
    static func decode(_ body: [UInt8]) -> HostFrame? {
        guard body.count >= 5, let op = Op(rawValue: body[0]) else { return nil }
        let requestID = read(body, 1)
        var fields: [[UInt8]] = []
        var offset = 5
        while offset < body.count {
            guard offset + 4 <= body.count else { return nil }
            let size = Int(read(body, offset))
            offset += 4
            guard offset + size <= body.count else { return nil }
            fields.append(Array(body[offset..<(offset + size)]))
            offset += size
        }
        return HostFrame(op: op, requestID: requestID, fields: fields)
    }

    static func read(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }

    static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(value & 0xFF))
        bytes.append(UInt8((value >> 8) & 0xFF))
        bytes.append(UInt8((value >> 16) & 0xFF))
        bytes.append(UInt8(value >> 24))
    }

    func text(_ index: Int) -> String {
        index < fields.count ? String(decoding: fields[index], as: UTF8.self) : ""
    }
}
