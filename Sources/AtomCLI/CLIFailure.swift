internal import ArgumentParser
internal import AtomRPC
internal import Foundation

/// The exit codes of `atom`, distinct per kind of failure so scripts can tell them apart.
enum ExitStatus: Int32 {
    case success = 0
    case failure = 1
    case usage = 2
    case gatewayUnreachable = 3
    case serviceError = 4
    case unhealthy = 5
}

/// A failure reported as one clear line on stderr and a distinct exit code.
struct CLIFailure: Error, CustomStringConvertible {
    let status: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    var description: String { message }

    /// Maps an RPC error to the line and exit code the user sees.
    static func from(_ error: any Error) -> CLIFailure {
        if let failure = error as? CLIFailure { return failure }
        let rpc = RPCError.from(error)
        if rpc.reason == "GATEWAY_UNREACHABLE" {
            // The message already names the endpoint and the likely fix.
            return CLIFailure(.gatewayUnreachable, rpc.message)
        }
        // Any other failure of the call (DEADLINE_EXCEEDED and UNAVAILABLE included) came with the
        // gateway in reach: a slow skill or a lost instance is not a stack that is down.
        return CLIFailure(.serviceError, "\(rpc.code.displayName): \(rpc.message)")
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and the matching exit code.
    func reportingFailures(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch {
            let failure = CLIFailure.from(error)
            FileHandle.standardError.write(Data("atom: \(failure.message)\n".utf8))
            throw ExitCode(failure.status.rawValue)
        }
    }
}

/// Writes an Encodable as pretty JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}
