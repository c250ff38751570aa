@testable import AtomInstaller
import Foundation
import Testing

@Suite("Lock parsing")
struct DigestAndLockTests {
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
