// Hand-written runtime support for the generated message types (see Generated/).

/// A Swift value type generated from an `atom.v1` proto message, encoded and decoded with
/// protobuf-c.
public protocol ProtoMessage: Sendable, Hashable {
    /// Full proto name, e.g. "atom.v1.EchoRequest".
    static var protoName: String { get }
    init()
    /// Decodes standard protobuf wire bytes with protobuf-c. Throws ProtoError.
    init(serializedBytes bytes: UnsafeRawBufferPointer) throws
    /// Encodes to standard protobuf wire bytes with protobuf-c. Throws ProtoError (e.g. a
    /// string holding a NUL byte).
    func serializedBytes() throws -> [UInt8]
}

extension ProtoMessage {
    /// Decodes standard protobuf wire bytes with protobuf-c. Throws ProtoError.
    public init(serializedBytes bytes: [UInt8]) throws {
        self = try bytes.withUnsafeBytes { try Self(serializedBytes: $0) }
    }
}

/// Why a message could not be encoded or decoded.
public struct ProtoError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The bytes are not a valid encoding of the message.
        case malformed
        /// A string field holds bytes that are not UTF-8.
        case invalidUTF8
        /// A string to encode holds a NUL byte, which protobuf-c strings (C strings) cannot carry.
        case embeddedNUL
    }

    public var kind: Kind
    /// Actionable, names the message type and field where known.
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    static func malformed(_ protoName: String) -> ProtoError {
        ProtoError(kind: .malformed, message: "could not decode \(protoName): not valid protobuf")
    }

    static func invalidUTF8(field: String) -> ProtoError {
        ProtoError(
            kind: .invalidUTF8,
            message: "could not decode \(field): the string field is not valid UTF-8"
        )
    }

    static func embeddedNUL(field: String) -> ProtoError {
        ProtoError(
            kind: .embeddedNUL,
            message: "could not encode \(field): the string holds a NUL byte, which protobuf-c strings cannot carry"
        )
    }
}
