public import AtomProto

/// The few fields the gateway and the service reactors route on, read and written straight from
/// and to protobuf wire bytes, on every message.
///
/// Everything else goes through the generated protobuf-c codec. These two messages are on the
/// path of every call, several times, and only need scalars and two short strings: decoding
/// them whole (a C allocation per message, the metadata strings, a copy of the payload) was a
/// measurable share of a call's CPU. `RoutingCodecTests` checks both directions against the
/// generated codec, and that no input, however malformed, traps.
public enum RoutingCodec {
    /// What routing needs from a `RequestEnvelope`: fields 1-4. Metadata and payload are skipped.
    public struct RequestHead: Sendable, Equatable {
        public var service: String = ""
        public var method: String = ""
        public var callID: UInt64 = 0
        public var timeoutMs: UInt32 = 0

        /// Takes field `field` if it is one of the head's (1-4); false for any other field.
        mutating func read(_ field: UInt64, _ value: WireReader.Value, in buffer: UnsafeBufferPointer<UInt8>) -> Bool {
            switch (field, value) {
            case (1, .bytes(let range)): service = String(decoding: buffer[range], as: UTF8.self)
            case (2, .bytes(let range)): method = String(decoding: buffer[range], as: UTF8.self)
            case (3, .varint(let number)): callID = number
            case (4, .varint(let number)): timeoutMs = UInt32(truncatingIfNeeded: number)
            default: return false
            }
            return true
        }
    }

    /// Reads the head of a serialized `RequestEnvelope`; nil when the bytes are not well-formed
    /// protobuf.
    public static func requestHead(_ bytes: [UInt8]) -> RequestHead? {
        var head = RequestHead()
        let ok = bytes.withUnsafeBufferPointer { buffer in
            WireReader.forEachField(in: buffer) { field, value in
                _ = head.read(field, value, in: buffer)  // fields past the head are skipped
                return true
            }
        }
        return ok ? head : nil
    }

    /// A whole `RequestEnvelope`, as a service instance needs it: the head, the metadata and the
    /// payload. Decoded here rather than by the generated codec because it is on the path of
    /// every call a service serves (the generated decode allocates a C message, copies every
    /// string through it, and was the largest share of an echo call's decoding).
    public struct Request: Sendable, Equatable {
        public var head = RequestHead()
        public var metadata: [MetadataEntry] = []
        public var payload: [UInt8] = []
    }

    /// Reads a serialized `RequestEnvelope` whole; nil when the bytes, or those of a metadata
    /// entry, are not well-formed protobuf.
    public static func request(_ bytes: [UInt8]) -> Request? {
        var request = Request()
        let ok = bytes.withUnsafeBufferPointer { buffer in
            var payload: Range<Int>?
            let wellFormed = WireReader.forEachField(in: buffer) { field, value in
                if request.head.read(field, value, in: buffer) { return true }
                switch (field, value) {
                case (5, .bytes(let range)):
                    let entryBytes = UnsafeBufferPointer(rebasing: buffer[range])
                    var entry = MetadataEntry()
                    let valid = WireReader.forEachField(in: entryBytes) { field, value in
                        switch (field, value) {
                        case (1, .bytes(let range)): entry.key = String(decoding: entryBytes[range], as: UTF8.self)
                        case (2, .bytes(let range)): entry.value = String(decoding: entryBytes[range], as: UTF8.self)
                        default: break
                        }
                        return true
                    }
                    guard valid else { return false }
                    request.metadata.append(entry)
                case (6, .bytes(let range)): payload = range
                default: break
                }
                return true
            }
            if wellFormed, let payload { request.payload = Array(buffer[payload]) }
            return wellFormed
        }
        return ok ? request : nil
    }

    /// Decodes a serialized `RouteHeader`; nil when the bytes are not well-formed protobuf.
    public static func routeHeader(_ bytes: [UInt8]) -> RouteHeader? {
        var header = RouteHeader()
        let ok = bytes.withUnsafeBufferPointer { buffer in
            WireReader.forEachField(in: buffer) { field, value in
                switch (field, value) {
                case (1, .varint(let number)): header.callId = number
                case (2, .varint(let number)): header.timeoutMs = UInt32(truncatingIfNeeded: number)
                case (3, .varint(let number)): header.endOfStream = number != 0
                default: break
                }
                return true
            }
        }
        return ok ? header : nil
    }

    /// Encodes a `RouteHeader` as the generated codec does (proto3: default values omitted).
    public static func encode(_ header: RouteHeader) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        if header.callId != 0 {
            bytes.append(0x08)
            ProtoWire.appendVarint(header.callId, to: &bytes)
        }
        if header.timeoutMs != 0 {
            bytes.append(0x10)
            ProtoWire.appendVarint(UInt64(header.timeoutMs), to: &bytes)
        }
        if header.endOfStream {
            bytes.append(0x18)
            bytes.append(1)
        }
        return bytes
    }

    /// Encodes a `RequestEnvelope` as the generated codec does (fields in order, proto3 defaults
    /// omitted). Every call a client makes goes through here.
    public static func encodeRequest(
        service: String, method: String, callID: UInt64, timeoutMs: UInt32, metadata: [MetadataEntry], payload: [UInt8]
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(service.utf8.count + method.utf8.count + payload.count + 24 + metadata.count * 40)
        ProtoWire.appendString(1, service, to: &bytes)
        ProtoWire.appendString(2, method, to: &bytes)
        ProtoWire.appendField(3, callID, to: &bytes)
        ProtoWire.appendField(4, UInt64(timeoutMs), to: &bytes)
        for entry in metadata {
            let size = ProtoWire.lengthDelimitedSize(1, count: entry.key.utf8.count)
                + ProtoWire.lengthDelimitedSize(2, count: entry.value.utf8.count)
            // An empty entry is still an entry: a present, zero-length message.
            bytes.append(0x2A)
            ProtoWire.appendVarint(UInt64(size), to: &bytes)
            ProtoWire.appendString(1, entry.key, to: &bytes)
            ProtoWire.appendString(2, entry.value, to: &bytes)
        }
        ProtoWire.appendLengthDelimited(6, count: payload.count, to: &bytes) { $0.append(contentsOf: payload) }
        return bytes
    }

    /// A `ResponseEnvelope` with status OK (a handler's answer, or one stream message), encoded as
    /// the generated codec encodes `ResponseEnvelope(callId:status: RPCStatus(code: .ok),
    /// payload:endOfStream:)`.
    public static func encodeOKResponse(callID: UInt64, payload: [UInt8], endOfStream: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(payload.count + 18)
        if callID != 0 {
            bytes.append(0x08)
            ProtoWire.appendVarint(callID, to: &bytes)
        }
        bytes.append(contentsOf: [0x12, 0x00])  // status: present, code OK (0) and nothing else
        if !payload.isEmpty {
            bytes.append(0x1A)
            ProtoWire.appendVarint(UInt64(payload.count), to: &bytes)
            bytes.append(contentsOf: payload)
        }
        if endOfStream { bytes.append(contentsOf: [0x20, 0x01]) }
        return bytes
    }

    /// What a caller needs of a `ResponseEnvelope` whose status is OK (or absent, which means OK).
    public struct OKResponse: Sendable, Equatable {
        public var callID: UInt64 = 0
        public var payload: [UInt8] = []
        public var endOfStream = false
    }

    /// Reads a `ResponseEnvelope` whose status is OK; nil for any other status (the caller then
    /// decodes it whole, for the message and details) and for bytes that are not well-formed.
    public static func okResponse(_ bytes: [UInt8]) -> OKResponse? {
        var response = OKResponse()
        let ok = bytes.withUnsafeBufferPointer { buffer in
            var payload: Range<Int>?
            // Repeated occurrences of the status merge, as protobuf merges messages: the code
            // of the last one that sets it wins.
            var code: UInt64 = 0
            let wellFormed = WireReader.forEachField(in: buffer) { field, value in
                switch (field, value) {
                case (1, .varint(let number)): response.callID = number
                case (2, .bytes(let range)):
                    let status = UnsafeBufferPointer(rebasing: buffer[range])
                    return WireReader.forEachField(in: status) { field, value in
                        if field == 1, case .varint(let number) = value { code = number }
                        return true
                    }
                case (3, .bytes(let range)): payload = range
                case (4, .varint(let number)): response.endOfStream = number != 0
                default: break
                }
                return true
            }
            guard wellFormed, code == 0 else { return false }
            if let payload { response.payload = Array(buffer[payload]) }
            return true
        }
        return ok ? response : nil
    }
}

/// A bounds-checked cursor over protobuf wire bytes.
struct WireReader {
    /// One field's value: a varint, the range of a length-delimited value, or a fixed-size value
    /// these messages never use (skipped).
    enum Value {
        case varint(UInt64)
        case bytes(Range<Int>)
        case skipped
    }

    /// Calls `visit` with every field of a message in order; false when the bytes are not
    /// well-formed protobuf or `visit` returns false.
    static func forEachField(in buffer: UnsafeBufferPointer<UInt8>, _ visit: (UInt64, Value) -> Bool) -> Bool {
        var reader = WireReader(buffer)
        while !reader.atEnd {
            guard let (field, type) = reader.tag() else { return false }
            let value: Value
            switch type {
            case .varint:
                guard let number = reader.varint() else { return false }
                value = .varint(number)
            case .lengthDelimited:
                guard let range = reader.lengthDelimited() else { return false }
                value = .bytes(range)
            default:
                guard reader.skip(type) else { return false }
                value = .skipped
            }
            guard visit(field, value) else { return false }
        }
        return true
    }

    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    let buffer: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ buffer: UnsafeBufferPointer<UInt8>) {
        self.buffer = buffer
    }

    var atEnd: Bool { position >= buffer.count }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < buffer.count && shift < 64 {
            let byte = buffer[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        return nil  // truncated, or longer than ten bytes
    }

    /// A field number (at least 1) and a wire type this reader can skip.
    mutating func tag() -> (UInt64, WireType)? {
        guard let key = varint(), let type = WireType(rawValue: UInt8(key & 7)), key >> 3 > 0 else { return nil }
        return (key >> 3, type)
    }

    mutating func lengthDelimited() -> Range<Int>? {
        guard let length = varint(), length <= UInt64(buffer.count - position) else { return nil }
        let start = position
        position += Int(length)
        return start..<position
    }

    /// Skips one field's value. Groups (deprecated, never used by these messages) are refused.
    mutating func skip(_ type: WireType) -> Bool {
        switch type {
        case .varint: return varint() != nil
        case .fixed64: return advance(8)
        case .fixed32: return advance(4)
        case .lengthDelimited: return lengthDelimited() != nil
        case .startGroup, .endGroup: return false
        }
    }

    private mutating func advance(_ count: Int) -> Bool {
        guard buffer.count - position >= count else { return false }
        position += count
        return true
    }
}
