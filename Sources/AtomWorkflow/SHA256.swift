internal import Crypto
internal import Foundation

/// Hex SHA-256 digests (cache keys), computed by swift-crypto.
enum SHA256 {
    static func hex(_ text: String) -> String {
        Crypto.SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
