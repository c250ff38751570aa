public import Crypto
public import Foundation

/// SHA-256 digests as lowercase hex: skill content hashes, environment and cache keys, file
/// digests. One place for the hex form, so every key in the project is spelled the same way.
public enum SHA256Hex {
    /// The digest of `text`'s UTF-8 bytes.
    public static func of(_ text: String) -> String { of(bytes: Array(text.utf8)) }

    /// The digest of `bytes`.
    public static func of(bytes: some DataProtocol) -> String { hex(Crypto.SHA256.hash(data: bytes)) }

    /// A digest computed elsewhere (an incremental `Crypto.SHA256`), as hex.
    public static func hex(_ digest: SHA256.Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(SHA256.Digest.byteCount * 2)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
