import Foundation
import Testing

@testable import AtomInstaller

/// `Subprocess` runs uv, Python and npm for the installer: what they print must come back whole,
/// and nothing may be left on disk, even when the installer is killed while a child runs.
@Suite("Subprocess")
struct SubprocessTests {
    @Test("stdout, stderr and the exit status come back, and non-UTF-8 output is kept as text")
    func capturesOutput() async throws {
        let outcome = try await Subprocess.run(
            "/bin/sh", ["-c", "printf 'out\\n'; printf 'err\\n' >&2; printf '\\377x\\n'; exit 3"], timeout: .seconds(30))
        #expect(outcome.status == 3)
        #expect(!outcome.succeeded)
        #expect(outcome.stdout == "out\n\u{FFFD}x\n")
        #expect(outcome.stderr == "err\n")
    }

    @Test("output larger than one read comes back whole")
    func largeOutput() async throws {
        // 300,000 bytes: several chunks of the capture's reads.
        let outcome = try await Subprocess.run("/bin/sh", ["-c", "head -c 300000 /dev/zero | tr '\\0' 'a'"], timeout: .seconds(30))
        #expect(outcome.succeeded)
        #expect(outcome.stdout.utf8.count == 300_000)
        #expect(outcome.stdout.utf8.allSatisfy { $0 == UInt8(ascii: "a") })
    }

    /// The capture has no name from the start: a process killed while its child runs leaves
    /// nothing behind (named files removed at the end piled up in /tmp).
    @Test("a capture file has no name on disk, and the child's output reaches it")
    func captureIsUnnamed() async throws {
        let capture = try OutputCapture()
        var status = stat()
        #expect(fstat(capture.descriptor, &status) == 0)
        #expect(status.st_nlink == 0)
        let written = "through the descriptor\n"
        #expect(write(capture.descriptor, written, written.utf8.count) == written.utf8.count)
        #expect(capture.contents() == written)
    }

    @Test("a child cannot write to another child's capture (close-on-exec)")
    func captureNotInherited() async throws {
        let capture = try OutputCapture()
        let flags = fcntl(capture.descriptor, F_GETFD)
        #expect(flags >= 0 && flags & FD_CLOEXEC != 0)
        #if os(Linux)
        // A child that looks for the descriptor by number (`[` is a shell builtin: /proc/self
        // is the child shell itself) does not find it.
        let outcome = try await Subprocess.run(
            "/bin/sh", ["-c", "if [ -e /proc/self/fd/\(capture.descriptor) ]; then echo open; else echo closed; fi"],
            timeout: .seconds(30))
        #expect(outcome.stdout == "closed\n")
        #endif
    }
}
