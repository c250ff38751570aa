// Memory for the C structs built while encoding: every string, byte buffer, array and nested
// struct handed to protobuf-c is allocated here and freed together after packing.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC

/// Owns the malloc'ed memory of one C message tree while it is packed.
final class ProtoArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    private init() {}

    /// Runs `body` with a fresh arena and frees everything it allocated afterwards.
    static func with<R>(_ body: (ProtoArena) throws -> R) rethrows -> R {
        let arena = ProtoArena()
        defer { arena.freeAll() }
        return try body(arena)
    }

    private func freeAll() {
        for block in blocks { free(block) }
        blocks.removeAll()
    }

    private func raw(count: Int, stride: Int) -> UnsafeMutableRawPointer {
        guard let block = calloc(max(count, 1), max(stride, 1)) else {
            fatalError("ProtoArena: out of memory allocating \(count) x \(stride) bytes")
        }
        blocks.append(block)
        return block
    }

    /// One zeroed `T` (a nested message struct); the caller runs its `__init` function.
    func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        raw(count: 1, stride: MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
    }

    /// `count` zeroed `T`s, or nil when `count` is 0.
    func allocateArray<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T>? {
        guard count > 0 else { return nil }
        return raw(count: count, stride: MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: count)
    }

    /// A copy of `values` for a repeated scalar or enum field, or nil when empty.
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard let out = allocateArray(T.self, count: values.count) else { return nil }
        values.withUnsafeBufferPointer { buffer in
            out.initialize(from: buffer.baseAddress!, count: buffer.count)
        }
        return out
    }

    /// A NUL-terminated copy of `value`. `field` names the proto field for the error.
    func string(_ value: String, field: @autoclosure () -> String) throws -> UnsafeMutablePointer<CChar> {
        var value = value
        return try value.withUTF8 { utf8 in
            if utf8.contains(0) { throw ProtoError.embeddedNUL(field: field()) }
            let out = raw(count: utf8.count + 1, stride: 1).bindMemory(to: CChar.self, capacity: utf8.count + 1)
            if let base = utf8.baseAddress, utf8.count > 0 {
                UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: utf8.count)
            }
            out[utf8.count] = 0
            return out
        }
    }

    /// Copies of `values` for a repeated string field, or nil when empty.
    func strings(
        _ values: [String], field: @autoclosure () -> String
    ) throws -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        guard let out = allocateArray(UnsafeMutablePointer<CChar>?.self, count: values.count) else { return nil }
        for (index, value) in values.enumerated() {
            out[index] = try string(value, field: field())
        }
        return out
    }

    /// A copy of `value` for a bytes field; empty bytes are `{0, NULL}`.
    func bytes(_ value: [UInt8]) -> ProtobufCBinaryData {
        var data = ProtobufCBinaryData()
        data.len = value.count
        data.data = array(value)
        return data
    }

    /// Copies of `values` for a repeated bytes field, or nil when empty.
    func bytesArray(_ values: [[UInt8]]) -> UnsafeMutablePointer<ProtobufCBinaryData>? {
        array(values.map { bytes($0) })
    }
}

/// Conversions from the C structs protobuf-c unpacked, used by the generated code.
enum ProtoDecode {
    /// A string field: NULL is "", anything else must be UTF-8.
    static func string(_ pointer: UnsafePointer<CChar>?, field: @autoclosure () -> String) throws -> String {
        guard let pointer else { return "" }
        guard let value = String(validatingCString: pointer) else {
            throw ProtoError.invalidUTF8(field: field())
        }
        return value
    }

    static func strings(
        _ pointer: UnsafePointer<UnsafeMutablePointer<CChar>?>?, count: Int, field: @autoclosure () -> String
    ) throws -> [String] {
        guard let pointer, count > 0 else { return [] }
        var out: [String] = []
        out.reserveCapacity(count)
        for index in 0..<count {
            out.append(try string(pointer[index], field: field()))
        }
        return out
    }

    /// A bytes field; `{0, NULL}` is empty and never dereferenced.
    static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }

    static func bytesArray(_ pointer: UnsafePointer<ProtobufCBinaryData>?, count: Int) -> [[UInt8]] {
        array(pointer, count: count).map { bytes($0) }
    }

    /// A repeated scalar or enum field.
    static func array<T>(_ pointer: UnsafePointer<T>?, count: Int) -> [T] {
        guard let pointer, count > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}

/// Packs a message through its `ProtobufCMessage` base with the generic protobuf-c functions
/// (nested message types get no per-type pack functions from protoc-c).
enum ProtoGeneric {
    static func pack<C>(_ message: inout C) -> [UInt8] {
        withUnsafeMutablePointer(to: &message) { pointer in
            pointer.withMemoryRebound(to: ProtobufCMessage.self, capacity: 1) { base in
                let size = protobuf_c_message_get_packed_size(base)
                guard size > 0 else { return [] }
                return [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                    count = protobuf_c_message_pack(base, buffer.baseAddress)
                }
            }
        }
    }

    /// Unpacks with `descriptor`, hands the typed struct to `body`, then frees it.
    static func unpack<C, R>(
        _ bytes: UnsafeRawBufferPointer,
        descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        protoName: String,
        as _: C.Type,
        _ body: (UnsafePointer<C>) throws -> R
    ) throws -> R {
        guard let message = protobuf_c_message_unpack(
            descriptor, nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        ) else {
            throw ProtoError.malformed(protoName)
        }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        return try body(UnsafeRawPointer(message).assumingMemoryBound(to: C.self))
    }
}
