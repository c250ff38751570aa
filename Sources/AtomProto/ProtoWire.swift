/// Protobuf wire primitives for the few places that write bytes by hand on a hot path (the RPC
/// runtime's routing codec, the marketplace's pre-encoded search pages). Each such writer is
/// tested byte for byte against the generated codec.
public enum ProtoWire {
    /// A base-128 varint.
    public static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// A varint field (wire type 0); nothing for zero, as proto3 encodes it.
    public static func appendField(_ number: UInt64, _ value: UInt64, to bytes: inout [UInt8]) {
        guard value != 0 else { return }
        appendVarint(number << 3, to: &bytes)
        appendVarint(value, to: &bytes)
    }

    /// A length-delimited field (wire type 2) holding `count` bytes written by `body`; nothing
    /// when empty, as proto3 encodes an empty string or bytes field.
    public static func appendLengthDelimited(_ number: UInt64, count: Int, to bytes: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        guard count > 0 else { return }
        appendVarint(number << 3 | 2, to: &bytes)
        appendVarint(UInt64(count), to: &bytes)
        body(&bytes)
    }

    /// A string field; nothing for the empty string.
    public static func appendString(_ number: UInt64, _ value: String, to bytes: inout [UInt8]) {
        var value = value
        value.withUTF8 { utf8 in
            appendLengthDelimited(number, count: utf8.count, to: &bytes) { $0.append(contentsOf: utf8) }
        }
    }

    /// The number of bytes `appendVarint` writes for `value`.
    public static func varintSize(_ value: UInt64) -> Int {
        (64 - value.leadingZeroBitCount + 6) / 7 + (value == 0 ? 1 : 0)
    }

    /// The number of bytes `appendLengthDelimited` writes for field `number` holding `count`
    /// bytes (none when empty).
    public static func lengthDelimitedSize(_ number: UInt64, count: Int) -> Int {
        count > 0 ? varintSize(number << 3 | 2) + varintSize(UInt64(count)) + count : 0
    }
}
