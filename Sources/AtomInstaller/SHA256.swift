internal import Crypto
internal import Foundation

/// Hex SHA-256 digests for content keys and file digests, computed by swift-crypto.
enum SHA256 {
    static func hex(_ text: String) -> String { hex(bytes: Array(text.utf8)) }

    static func hex(bytes: [UInt8]) -> String {
        Crypto.SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
