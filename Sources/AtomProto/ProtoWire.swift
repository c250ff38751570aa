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
}
