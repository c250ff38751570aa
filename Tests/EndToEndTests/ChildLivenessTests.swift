import AtomCLI
import Foundation
import Testing

/// The supervisor and the test stacks decide whether a child is alive with `ChildLiveness`; a
/// wrong answer either hangs them (an exit never seen) or restarts a healthy service.
@Suite("Child liveness")
struct ChildLivenessTests {
    private func start(_ script: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        try process.run()
        return process
    }

    private func waitForExit(_ process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ChildLiveness.isRunning(process) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    @Test("a child that exits is seen as exited, with its exit status")
    func exits() async throws {
        let process = try start("exit 3")
        try await waitForExit(process)
        #expect(!ChildLiveness.isRunning(process))
        #expect(ChildLiveness.status(process) == 3)
    }

    @Test("a running child stays running when asked again and again; killed, it is seen as gone")
    func runningThenKilled() async throws {
        let process = try start("sleep 30")
        for _ in 0..<50 {
            #expect(ChildLiveness.isRunning(process))
            try await Task.sleep(for: .milliseconds(2))
        }
        kill(process.processIdentifier, SIGKILL)
        try await waitForExit(process)
        #expect(!ChildLiveness.isRunning(process))
        #expect(ChildLiveness.status(process) == 128 + SIGKILL || ChildLiveness.status(process) == SIGKILL)
    }
}
