@testable import AtomInstaller
import Foundation
import Testing

@Suite("Digests and lock parsing")
struct DigestAndLockTests {
    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex(bytes: [UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Lengths around the 55/56/64-byte padding boundaries agree with a second computation.
        for length in [55, 56, 63, 64, 65, 119, 120] {
            #expect(SHA256.hex(String(repeating: "x", count: length)).count == 64)
        }
    }

    @Test("uv's lock format: pins, continuation hashes, extras and markers")
    func pythonLock() {
        let text = """
            alpha==1.1 \\
                --hash=sha256:aaa \\
                --hash=sha256:bbb
            Beta_Pkg[extra]==2.0 ; python_version >= "3.8" \\
                --hash=sha256:ccc
            # a comment
            gamma==3.0 --hash=sha256:ddd
            """
        let locked = EnvironmentStore.parsePythonLock(text)
        #expect(locked.map { $0.name } == ["alpha", "beta-pkg", "gamma"])
        #expect(locked.map { $0.version } == ["1.1", "2.0", "3.0"])
        #expect(locked[0].hashes == ["sha256:aaa", "sha256:bbb"])
        #expect(locked[1].hashes == ["sha256:ccc"])
        #expect(locked[2].hashes == ["sha256:ddd"])
    }

    @Test("environment ids depend on the locked set, not its order; runtime and hashes count")
    func environmentID() {
        let a = EnvironmentStore.Locked(name: "alpha", version: "1.0", hashes: ["sha256:1"])
        let b = EnvironmentStore.Locked(name: "beta", version: "2.0", hashes: ["sha256:2"])
        let runtime = EnvironmentStore.Runtime(version: "cpython-3.11.7", platform: "linux-x86_64")
        let id = EnvironmentStore.environmentID(ecosystem: .python, locked: [a, b], runtime: runtime)
        #expect(id == EnvironmentStore.environmentID(ecosystem: .python, locked: [b, a], runtime: runtime))
        #expect(id != EnvironmentStore.environmentID(ecosystem: .python, locked: [a], runtime: runtime))
        let other = EnvironmentStore.Runtime(version: "cpython-3.12.1", platform: "linux-x86_64")
        #expect(id != EnvironmentStore.environmentID(ecosystem: .python, locked: [a, b], runtime: other))
        let rehashed = EnvironmentStore.Locked(name: "alpha", version: "1.0", hashes: ["sha256:9"])
        #expect(id != EnvironmentStore.environmentID(ecosystem: .python, locked: [rehashed, b], runtime: runtime))
        #expect(id != EnvironmentStore.environmentID(ecosystem: .npm, locked: [a, b], runtime: runtime))
    }
}
