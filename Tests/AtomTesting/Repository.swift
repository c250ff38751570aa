internal import AtomCLI
internal import Foundation

/// Where the repository is, for tests that read its committed files (`skills/`, `proto/`, ...).
public enum Repository {
    public static var root: String {
        // Tests/AtomTesting/Repository.swift -> the repository.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now.
    public static func freePort() throws -> Int {
        let endpoint = try LocalStack.freeTCPEndpoint()
        guard let port = endpoint.split(separator: ":").last.flatMap({ Int($0) }) else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "no port in \(endpoint)"])
        }
        return port
    }
}
