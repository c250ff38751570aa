internal import Foundation

/// What a finished subprocess printed and how it ended.
struct ProcessOutcome: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool

    var succeeded: Bool { status == 0 && !timedOut }

    /// The last lines of stderr (or stdout), for error messages.
    var tail: String {
        let text = stderr.isEmpty ? stdout : stderr
        let lines = text.split(separator: "\n").suffix(12)
        return lines.joined(separator: "\n")
    }
}

/// Runs a program without blocking the cooperative pool: `Process` reports its end through
/// `terminationHandler` into a continuation, and its output goes to files (no pipe can fill
/// up and stall the child, and no thread blocks reading it).
enum Subprocess {
    struct LaunchFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:],
        directory: String? = nil, timeout: Duration = .seconds(600)
    ) async throws -> ProcessOutcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        process.environment = variables
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let base = NSTemporaryDirectory() + "atom-installer-\(UUID().uuidString)"
        let outPath = base + ".out", errPath = base + ".err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let timedOut = TimeoutFlag()
        let status: Int32 = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
                process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
                do {
                    try process.run()
                } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: LaunchFailure(description: "cannot start \(executable): \(error.localizedDescription)"))
                    return
                }
                let pid = process.processIdentifier
                // The hard limit: SIGKILL when the child runs too long.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout / .milliseconds(1)))) {
                    if process.isRunning {
                        timedOut.set()
                        kill(pid, SIGKILL)
                    }
                }
            }
        } onCancel: {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? out.close()
        try? err.close()
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return ProcessOutcome(status: status, stdout: stdout, stderr: stderr, timedOut: timedOut.value)
    }

    /// The absolute path of `name` on PATH.
    static func which(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

private final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var fired = false
    func set() { lock.withLock { fired = true } }
    var value: Bool { lock.withLock { fired } }
}
