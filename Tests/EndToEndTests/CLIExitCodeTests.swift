import AtomRPC
import Foundation
import Testing

@testable import AtomCLI

/// What `atom` exits with, and says, for a command line it cannot use and for each kind of failed
/// call: the codes README documents, so scripts can tell a typo from a stack that is down.
@Suite("CLI exit codes")
struct CLIExitCodeTests {
    @Test("a timeout or deadline that is not a number of seconds above 0 is a usage error, never a crash", arguments: [
        ["search", "csv", "--timeout", "nan"], ["search", "csv", "--timeout", "inf"], ["search", "csv", "--timeout", "0"],
        ["search", "csv", "--timeout=-5"], ["marketplace", "import", "x", "--deadline", "1e300"],
        ["workflow", "run", "flow.yaml", "--deadline", "nan"], ["bench", "rpc", "--seconds", "inf"], ["up", "--ready-timeout", "0"],
    ])
    func badSeconds(_ arguments: [String]) throws {
        // An unreachable gateway: a value that got through would fail differently (exit 3), and
        // `up` or `bench` would start nothing that could listen there.
        let run = try CLI.run(arguments + ["--gateway", "tcp://127.0.0.1:1"], environment: [:])
        #expect(run.status == 2, "\(arguments): \(run.output)")
        #expect(run.output.contains("not a number of seconds above 0 and at most 2592000 (30 days)"), "\(run.output)")
    }

    @Test("a command line ArgumentParser cannot parse exits 2, as the other usage errors do")
    func unparsable() throws {
        let unknown = try CLI.run(["no-such-command"], environment: [:])
        #expect(unknown.status == 2, "\(unknown.output)")
        #expect(unknown.output.contains("Unexpected argument 'no-such-command'"))
        let notANumber = try CLI.run(["search", "csv", "--page", "abc"], environment: [:])
        #expect(notANumber.status == 2, "\(notANumber.output)")
        let help = try CLI.run(["search", "--help"], environment: [:])
        #expect(help.status == 0 && help.output.contains("--page"))
    }

    @Test("with --json a failure is JSON on stdout too: message, exit code, RPC code and reason")
    func jsonFailures() throws {
        func errorObject(_ output: String) throws -> [String: Any] {
            let json = try #require(output.firstIndex(of: "{").map { String(output[$0...]) }, "no JSON in \(output)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return try #require(object["error"] as? [String: Any], "\(object)")
        }
        let unreachable = try CLI.run(["marketplace", "get", "csv-stats", "--json", "--gateway", "tcp://127.0.0.1:1"], environment: [:])
        #expect(unreachable.status == 3)
        let error = try errorObject(unreachable.output)
        #expect(error["exit_code"] as? Int == 3 && error["code"] as? String == "UNAVAILABLE" && error["reason"] as? String == "GATEWAY_UNREACHABLE", "\(error)")
        #expect((error["message"] as? String)?.contains("gateway not reachable at tcp://127.0.0.1:1") == true)
        let usage = try CLI.run(["health", "--json"], environment: ["ATOM_GATEWAY": "nonsense"])
        #expect(usage.status == 2)
        let usageError = try errorObject(usage.output)
        #expect(usageError["exit_code"] as? Int == 2 && usageError["code"] == nil && (usageError["message"] as? String)?.contains("ATOM_GATEWAY=nonsense") == true, "\(usageError)")
        // Without --json, no JSON.
        #expect(!(try CLI.run(["health"], environment: ["ATOM_GATEWAY": "nonsense"]).output.contains("{")))
    }

    @Test("only an unreachable gateway exits 3; a deadline or an unavailable service with the gateway up exits 4")
    func callFailures() {
        let unreachable = CLIFailure.from(RPCError.withReason(.unavailable, "gateway not reachable at tcp://h:1: is `atom up` running?", reason: "GATEWAY_UNREACHABLE"))
        #expect(unreachable.status == .gatewayUnreachable)
        #expect(unreachable.message == "gateway not reachable at tcp://h:1: is `atom up` running?")
        let slow = CLIFailure.from(RPCError(.deadlineExceeded, "atom.v1.Loader/ExecuteSkill: deadline exceeded"))
        #expect(slow.status == .serviceError)
        #expect(slow.message == "DEADLINE_EXCEEDED: atom.v1.Loader/ExecuteSkill: deadline exceeded")
        let lost = CLIFailure.from(RPCError.withReason(.unavailable, "the instance was lost", reason: "INSTANCE_LOST"))
        #expect(lost.status == .serviceError)
        let refused = CLIFailure.from(RPCError(.invalidArgument, "page_size 101: at most 100"))
        #expect(refused.status == .serviceError)
    }
}

@Suite("Parent processes from /proc")
struct ParentProcessTests {
    @Test("the parent is read after the command name, whatever the name holds")
    func parses() {
        #expect(ParentProcess.parent(stat: "4242 (atom-echo) S 4200 4242 4242 0 -1") == 4200)
        #expect(ParentProcess.parent(stat: "7 (a) b) (c) R 1 7 7 0") == 1)
        #expect(ParentProcess.parent(stat: "garbage") == nil)
    }

    @Test("this process's parent, and a child's")
    func live() throws {
        #expect(ParentProcess.of(getpid()) == getppid())
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["5"]
        try child.run()
        defer { child.terminate(); child.waitUntilExit() }
        #expect(ParentProcess.of(child.processIdentifier) == getpid())
        #expect(ParentProcess.of(-1) == nil)
    }
}

@Suite("Decoding problems in words")
struct DecodingProblemTests {
    struct Item: Decodable { let skill_id: String?; let packages: [String] }

    @Test("where in the document and what was wrong, for each kind of DecodingError", arguments: [
        (#"{"a": 1}"#, "the document: expected a list"),
        (#"[{"packages": 3}]"#, "item 0: packages: expected a list"),
        (#"[{"packages": ["x"]}, {}]"#, "item 1: packages: missing"),
        (#"[{"packages": [1]}]"#, "item 0: packages[0]: expected a string"),
        (#"[{"packages": null}]"#, "item 0: packages: expected a list, found null"),
        ("nope", "not valid JSON"),
    ])
    func describes(_ json: String, _ expected: String) {
        do {
            _ = try JSONDecoder().decode([Item].self, from: Data(json.utf8))
            Issue.record("\(json) decoded")
        } catch {
            #expect(DecodingProblem.describe(error) == expected)
        }
    }
}
