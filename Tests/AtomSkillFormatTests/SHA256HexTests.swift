import Crypto
import Foundation
import Testing

@testable import AtomSkillFormat

/// Every key in the project (skill content hashes, environment ids, resolution and result-cache
/// keys, file digests) is a SHA-256 in this hex form: a wrong digit would split caches silently.
@Suite("SHA-256 hex")
struct SHA256HexTests {
    @Test("the FIPS 180-4 test vectors, as lowercase hex")
    func vectors() {
        #expect(SHA256Hex.of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hex.of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hex.of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256Hex.of(bytes: [UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("text, bytes and an incremental digest of the same input agree")
    func formsAgree() {
        for length in [0, 1, 55, 56, 63, 64, 65, 119, 120, 1_000] {
            let text = String(repeating: "x", count: length)
            var hasher = SHA256()
            hasher.update(data: Data(text.utf8))
            let incremental = SHA256Hex.hex(hasher.finalize())
            #expect(SHA256Hex.of(text) == incremental)
            #expect(SHA256Hex.of(bytes: Data(text.utf8)) == incremental)
            #expect(incremental.count == 64 && incremental.allSatisfy { "0123456789abcdef".contains($0) })
        }
    }
}
