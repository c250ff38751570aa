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
    /// The RPC status code's name (`NOT_FOUND`) and `ErrorInfo` reason of a failed call; empty
    /// for a failure of the CLI itself.
    var code = ""
    var reason = ""

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    /// What `--json` prints on stdout for a failure, beside the line on stderr.
    struct JSONView: Encodable {
        struct Body: Encodable {
            let message: String
            let exit_code: Int32
            let code: String?
            let reason: String?
        }
        let error: Body
    }

    var jsonView: JSONView {
        JSONView(error: .init(message: message, exit_code: status.rawValue, code: code.isEmpty ? nil : code, reason: reason.isEmpty ? nil : reason))
    }

    var description: String { message }

    /// Maps an RPC error to the line and exit code the user sees.
    static func from(_ error: any Error) -> CLIFailure {
        if let failure = error as? CLIFailure { return failure }
        let rpc = RPCError.from(error)
        var failure: CLIFailure
        if rpc.reason == "GATEWAY_UNREACHABLE" {
            // The message already names the endpoint and the likely fix.
            failure = CLIFailure(.gatewayUnreachable, rpc.message)
        } else {
            // Any other failure of the call (DEADLINE_EXCEEDED and UNAVAILABLE included) came with
            // the gateway in reach: a slow skill or a lost instance is not a stack that is down.
            failure = CLIFailure(.serviceError, "\(rpc.code.displayName): \(rpc.message)")
        }
        failure.code = rpc.code.displayName
        failure.reason = rpc.reason ?? ""
        return failure
    }
}

extension AsyncParsableCommand {
    /// Runs `body`, turning failures into a message on stderr and the matching exit code; with
    /// `json`, also `{"error": {"message", "exit_code", "code", "reason"}}` on stdout (one line), so a script
    /// that asked for JSON gets JSON whether the command worked or not.
    func reportingFailures(json: Bool = false, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as ExitCode {
            throw error
        } catch {
            let failure = CLIFailure.from(error)
            FileHandle.standardError.write(Data("atom: \(failure.message)\n".utf8))
            // One line: commands that stream print JSON Lines, and one line is JSON for the others too.
            if json { try? printJSONLine(failure.jsonView) }
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
