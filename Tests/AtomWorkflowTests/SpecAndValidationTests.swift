import AtomProto
import AtomTesting
@testable import AtomWorkflow
import Foundation
import Testing

func validate(_ yaml: String, limits: WorkflowLimits = WorkflowLimits()) throws -> ValidationOutcome {
    WorkflowValidator.validate(try SpecParser.parse(yaml), limits: limits)
}

func codes(_ outcome: ValidationOutcome) -> [String] { outcome.errors.map(\.code) }

@Suite("Workflow specs")
struct SpecParserTests {
    static let yaml = """
        name: summarize-page
        description: fetch a page and summarize it
        inputs:
          url: {type: string, required: true}
          words: {type: integer, default: 50}
        timeout_seconds: 120
        parallelism: 4
        fail_fast: false
        steps:
          - id: fetch
            skill: http-get
            inputs: {url: "${inputs.url}", headers: {accept: text/html}}
            timeout_seconds: 30
            retry: {max_attempts: 3, initial_backoff_ms: 200, max_backoff_ms: 2000, multiplier: 2, jitter: 0.2, retry_on: [UNAVAILABLE, ConnectionError]}
          - id: summarize
            skill: summarize
            depends_on: fetch
            inputs: {text: "${steps.fetch.output.body}", words: "${inputs.words}"}
            condition: "${steps.fetch.output.status} == 200"
            cache: true
        outputs: {summary: "${steps.summarize.output.text}"}
        """

    @Test("YAML and JSON give the same spec")
    func yamlAndJSON() throws {
        let spec = try SpecParser.parse(Self.yaml)
        #expect(spec.name == "summarize-page")
        #expect(spec.timeoutSeconds == 120 && spec.parallelism == 4)
        #expect(spec.inputs.map(\.name) == ["url", "words"])
        #expect(spec.inputs[1].type == "integer" && spec.inputs[1].defaultJson == "50")
        #expect(spec.steps.count == 2)
        let fetch = spec.steps[0]
        #expect(fetch.retry?.maxAttempts == 3 && fetch.retry?.retryOn == [.unavailable] && fetch.retry?.retryOnErrors == ["ConnectionError"])
        #expect(fetch.retry?.jitter == 0.2)
        #expect(try JSONValue.parse(fetch.inputsJson) == .object(["url": .string("${inputs.url}"), "headers": .object(["accept": .string("text/html")])]))
        #expect(spec.steps[1].dependsOn == ["fetch"] && spec.steps[1].cache)
        let json = """
            {"name": "summarize-page", "description": "fetch a page and summarize it",
             "inputs": {"url": {"type": "string", "required": true}, "words": {"type": "integer", "default": 50}},
             "timeout_seconds": 120, "parallelism": 4, "fail_fast": false,
             "steps": [
               {"id": "fetch", "skill": "http-get", "inputs": {"url": "${inputs.url}", "headers": {"accept": "text/html"}}, "timeout_seconds": 30,
                "retry": {"max_attempts": 3, "initial_backoff_ms": 200, "max_backoff_ms": 2000, "multiplier": 2, "jitter": 0.2, "retry_on": ["UNAVAILABLE", "ConnectionError"]}},
               {"id": "summarize", "skill": "summarize", "depends_on": "fetch", "inputs": {"text": "${steps.fetch.output.body}", "words": "${inputs.words}"},
                "condition": "${steps.fetch.output.status} == 200", "cache": true}],
             "outputs": {"summary": "${steps.summarize.output.text}"}}
            """
        #expect(try SpecParser.parse(json) == spec)
        let outcome = WorkflowValidator.validate(spec)
        #expect(outcome.errors.isEmpty, "\(outcome.errors)")
    }

    func expectSpecError(_ text: String, path: String, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try SpecParser.parse(text)
            Issue.record("expected a spec error at \(path)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
            for text in mentions { #expect(error.description.contains(text), "\(error) should mention \(text)", sourceLocation: sourceLocation) }
        }
    }

    @Test("unknown fields, wrong types and out-of-range values name the field")
    func badSpecs() {
        expectSpecError("name: x\nstep:\n  - {id: a, skill: s}\n", path: "step", mentions: ["unknown field", "did you mean steps?"])
        expectSpecError("steps:\n  - {id: a, skill: s, timeout: 3}\n", path: "steps[0] (a).timeout", mentions: ["unknown field", "timeout_seconds"])
        expectSpecError("steps:\n  - {id: a, skill: s, timeout_seconds: ten}\n", path: "steps[0] (a).timeout_seconds", mentions: ["must be an integer", "string"])
        expectSpecError("steps:\n  - {id: a, skill: s, timeout_seconds: 0}\n", path: "steps[0] (a).timeout_seconds", mentions: ["between 1 and 86400"])
        expectSpecError("steps:\n  - {id: a, skill: s, timeout_seconds: -5}\n", path: "steps[0] (a).timeout_seconds", mentions: ["-5"])
        expectSpecError("steps:\n  - {id: a, skill: s, depends_on: [1]}\n", path: "steps[0] (a).depends_on[0]", mentions: ["step id", "integer"])
        expectSpecError("steps:\n  - {id: a, skill: s, retry: {max_attempts: 3, backoff: 1}}\n", path: "steps[0] (a).retry.backoff", mentions: ["unknown field"])
        expectSpecError("steps:\n  - {id: a, skill: s, retry: {jitter: 2}}\n", path: "steps[0] (a).retry.jitter", mentions: ["between 0.0 and 1.0"])
        expectSpecError("steps:\n  - {id: a, skill: s, retry: {retry_on: [UNAVAILBLE]}}\n", path: "steps[0] (a).retry.retry_on[0]", mentions: ["not a status code"])
        expectSpecError("steps:\n  - {id: a, skill: s, cache: yes please}\n", path: "steps[0] (a).cache", mentions: ["true or false"])
        expectSpecError("steps:\n  - {id: a, skill: s, inputs: [1, 2]}\n", path: "steps[0] (a).inputs", mentions: ["mapping", "array"])
        expectSpecError("steps:\n  - {skill: s}\n", path: "steps[0].id", mentions: ["missing"])
        expectSpecError("name: x\n", path: "steps", mentions: ["missing"])
        expectSpecError("steps: 3\n", path: "steps", mentions: ["list"])
        expectSpecError("- a\n- b\n", path: "", mentions: ["mapping"])
        expectSpecError("steps: [\n", path: "", mentions: ["not valid YAML"])
        expectSpecError("{\"steps\": [}", path: "", mentions: ["not valid JSON"])
        expectSpecError("", path: "", mentions: ["empty"])
        expectSpecError("steps:\n  - {id: a, skill: s}\nsteps:\n  - {id: b, skill: s}\n", path: "", mentions: ["duplicated key"])
    }

    @Test("deep documents and huge graphs are refused with a clear error, never a crash")
    func deepAndHuge() throws {
        let deepYAML = "steps:\n  - id: a\n    skill: s\n    inputs: {x: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}\n"
        expectSpecError(deepYAML, path: "", mentions: ["nested more than 64"])
        var block = "steps:\n  - id: a\n    skill: s\n    inputs:\n"
        for level in 0..<200 { block += String(repeating: " ", count: 6 + level) + "k\(level):\n" }
        expectSpecError(block, path: "", mentions: ["nested more than 64"])
        let deepJSON = #"{"steps": [{"id": "a", "skill": "s", "inputs": {"x": "# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}}]}"
        expectSpecError(deepJSON, path: "", mentions: ["nested more than 64"])
        // An alias bomb expands past the value budget.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { bomb += "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        bomb += "steps: [{id: a, skill: s, inputs: {x: *a9}}]\n"
        do {
            _ = try SpecParser.parse(bomb)
            Issue.record("an alias bomb must be refused")
        } catch {
            #expect(error.description.contains("aliases") || error.description.contains("more than"), "\(error)")
        }
        // 10,001 steps is too many, 10,000 is fine (and a 10,000-step chain does not recurse).
        var many = WorkflowSpec(name: "many")
        for index in 0...WorkflowLimits.maxSteps {
            many.steps.append(WorkflowStep(id: "s\(index)", skill: "k", dependsOn: index > 0 ? ["s\(index - 1)"] : []))
        }
        #expect(codes(WorkflowValidator.validate(many)) == [WorkflowValidator.Code.tooManySteps])
        many.steps.removeLast()
        let chain = WorkflowValidator.validate(many)
        #expect(chain.errors.isEmpty)
        #expect(chain.compiled?.plan.depth == 10_000 && chain.compiled?.plan.width == 1 && chain.compiled?.plan.criticalPath.count == 10_000)
        let text = "steps:\n" + (0...WorkflowLimits.maxSteps).map { "  - {id: s\($0), skill: k}\n" }.joined()
        expectSpecError(text, path: "steps", mentions: ["10001 steps", "at most 10000"])
    }
}

@Suite("Workflow validation")
struct ValidatorTests {
    func error(_ outcome: ValidationOutcome, _ code: String) -> ValidationError? { outcome.errors.first { $0.code == code } }

    @Test("duplicate ids, missing dependencies, self-dependency and bad ids name the step")
    func graphErrors() throws {
        let outcome = try validate("""
            steps:
              - {id: a, skill: s}
              - {id: a, skill: s}
              - {id: b, skill: s, depends_on: [ghost]}
              - {id: c, skill: s, depends_on: [c]}
              - {id: 9lives, skill: s}
              - {id: d}
            """.replacingOccurrences(of: "{id: d}", with: "{id: d, skill: \"\"}"))
        #expect(error(outcome, "DUPLICATE_ID")?.stepId == "a")
        #expect(error(outcome, "DUPLICATE_ID")?.message.contains("steps[0]") == true)
        #expect(error(outcome, "MISSING_DEPENDENCY")?.stepId == "b")
        #expect(error(outcome, "MISSING_DEPENDENCY")?.message.contains("ghost") == true)
        #expect(error(outcome, "SELF_DEPENDENCY")?.stepId == "c")
        #expect(error(outcome, "INVALID_ID")?.message.contains("9lives") == true)
        #expect(error(outcome, "MISSING_SKILL")?.stepId == "d")
        #expect(outcome.compiled == nil)
        let empty = WorkflowValidator.validate(WorkflowSpec(name: "x"))
        #expect(codes(empty) == ["NO_STEPS"])
    }

    @Test("a cycle is reported with its path")
    func cycles() throws {
        let outcome = try validate("""
            steps:
              - {id: start, skill: s}
              - {id: a, skill: s, depends_on: [start, c]}
              - {id: b, skill: s, depends_on: [a]}
              - {id: c, skill: s, depends_on: [b]}
              - {id: x, skill: s, depends_on: [y]}
              - {id: y, skill: s, depends_on: [x]}
              - {id: after, skill: s, depends_on: [b]}
            """)
        let cycles = outcome.errors.filter { $0.code == "CYCLE" }
        #expect(cycles.count == 2, "\(outcome.errors)")
        let messages = cycles.map(\.message).joined(separator: "\n")
        #expect(messages.contains("a -> c -> b -> a"), "\(messages)")
        #expect(messages.contains("x -> y -> x"), "\(messages)")
        #expect(!messages.contains("after") && !messages.contains("start"))
    }

    @Test("references imply dependencies; references to steps that are not upstream, to unknown steps or inputs are errors")
    func references() throws {
        let good = try validate("""
            inputs: [url]
            steps:
              - {id: fetch, skill: get, inputs: {url: "${inputs.url}"}}
              - {id: parse, skill: parse, inputs: {body: "${steps.fetch.output.body}", note: "page ${steps.fetch.output.title}!"}}
            """)
        #expect(good.errors.isEmpty, "\(good.errors)")
        #expect(good.compiled?.plan.order == ["fetch", "parse"])
        #expect(good.compiled?.plan.levels.map(\.stepIds) == [["fetch"], ["parse"]])

        let notUpstream = try validate("""
            steps:
              - {id: a, skill: s, inputs: {x: "${steps.b.output.y}"}}
              - {id: b, skill: s, depends_on: [a]}
            """)
        let problem = try #require(error(notUpstream, "REFERENCE_NOT_UPSTREAM"), "\(notUpstream.errors)")
        #expect(problem.stepId == "a" && problem.message.contains("b runs after a"), "\(problem.message)")

        let unknown = try validate("""
            inputs: {url: {}}
            steps:
              - {id: a, skill: s, inputs: {x: "${steps.nope.output.y}", y: "${inputs.missing}", z: "${steps.a.output}"}}
              - {id: b, skill: s, inputs: {x: "${stuff.x}"}}
              - {id: c, skill: s, condition: "${steps.ghost.status} == 'succeeded'"}
            """)
        #expect(error(unknown, "UNKNOWN_STEP_REFERENCE")?.stepId == "a")
        #expect(error(unknown, "UNKNOWN_INPUT")?.message.contains("inputs: url") == true)
        #expect(error(unknown, "SELF_REFERENCE")?.stepId == "a")
        #expect(error(unknown, "BAD_REFERENCE")?.stepId == "b")
        #expect(unknown.errors.contains { $0.code == "UNKNOWN_STEP_REFERENCE" && $0.stepId == "c" && $0.message.contains("condition") })
    }

    @Test("bad timeouts, retry values, conditions and inputs name the step")
    func values() throws {
        var spec = WorkflowSpec(name: "w", timeoutSeconds: 60)
        spec.steps = [
            WorkflowStep(id: "slow", skill: "s", timeoutSeconds: 120),
            WorkflowStep(id: "r1", skill: "s", retry: RetryPolicy(maxAttempts: 500)),
            WorkflowStep(id: "r2", skill: "s", retry: RetryPolicy(maxAttempts: 3, initialBackoffMs: 5_000, maxBackoffMs: 100)),
            WorkflowStep(id: "r3", skill: "s", retry: RetryPolicy(maxAttempts: 3, multiplier: 0.5, jitter: -1)),
            WorkflowStep(id: "r4", skill: "s", retry: RetryPolicy(maxAttempts: 3, retryOn: [.ok, .unrecognized(99)], retryOnErrors: ["not a type"])),
            WorkflowStep(id: "cond", skill: "s", condition: "${inputs.x} = 3"),
            WorkflowStep(id: "json", skill: "s", inputsJson: "{\"a\": }"),
            WorkflowStep(id: "array", skill: "s", inputsJson: "[1]"),
            WorkflowStep(id: "ttl", skill: "s", cacheTtlSeconds: 99_999_999),
        ]
        spec.inputs = [WorkflowInput(name: "x", type: "integer")]
        let outcome = WorkflowValidator.validate(spec)
        func has(_ step: String, _ code: String, _ text: String) {
            #expect(outcome.errors.contains { $0.stepId == step && $0.code == code && $0.message.contains(text) }, "\(step) \(code) \(text): \(outcome.errors)")
        }
        has("slow", "BAD_TIMEOUT", "longer than the workflow's 60")
        has("r1", "BAD_RETRY", "max_attempts 500")
        has("r2", "BAD_RETRY", "more than max_backoff_ms")
        has("r3", "BAD_RETRY", "multiplier 0.5")
        has("r3", "BAD_RETRY", "jitter -1")
        has("r4", "BAD_RETRY", "cannot hold OK")
        has("r4", "BAD_RETRY", "unknown status code 99")
        has("r4", "BAD_RETRY", "not a type")
        has("cond", "BAD_CONDITION", "'=' is not an operator")
        has("json", "BAD_INPUTS", "not JSON")
        has("array", "BAD_INPUTS", "must be a JSON object")
        has("ttl", "BAD_CACHE", "30 days")
        var tooParallel = WorkflowSpec(name: "p", steps: [WorkflowStep(id: "a", skill: "s")], parallelism: 5_000)
        #expect(WorkflowValidator.validate(tooParallel, limits: WorkflowLimits(maxParallelism: 16)).errors.first?.message.contains("WORKFLOW_MAX_PARALLELISM") == true)
        tooParallel.parallelism = 4
        #expect(WorkflowValidator.validate(tooParallel).compiled?.parallelism == 4)
    }

    @Test("the plan: topological order, levels, depth, width, critical path")
    func plan() throws {
        let outcome = try validate("""
            steps:
              - {id: a, skill: s}
              - {id: b, skill: s}
              - {id: c, skill: s, depends_on: [a]}
              - {id: d, skill: s, depends_on: [a, b]}
              - {id: e, skill: s, depends_on: [c, d]}
              - {id: f, skill: s, depends_on: [e]}
              - {id: g, skill: s}
            """)
        let plan = try #require(outcome.compiled?.plan)
        #expect(plan.levels.map(\.stepIds) == [["a", "b", "g"], ["c", "d"], ["e"], ["f"]])
        #expect(plan.depth == 4 && plan.width == 3)
        #expect(plan.criticalPath == ["a", "c", "e", "f"])
        // Every step comes after its dependencies in the order.
        let position = Dictionary(uniqueKeysWithValues: plan.order.enumerated().map { ($1, $0) })
        for (step, dependencies) in ["c": ["a"], "d": ["a", "b"], "e": ["c", "d"], "f": ["e"]] {
            for dependency in dependencies { #expect(position[dependency]! < position[step]!) }
        }
    }
}

@Suite("Condition language")
struct ExpressionTests {
    struct Scope: ReferenceScope {
        var inputs: [String: JSONValue] = [:]
        var outputs: [String: JSONValue] = [:]
        func input(_ name: String) -> JSONValue? { inputs[name] }
        func stepOutput(_ id: String) -> JSONValue? { outputs[id] }
        func stepStatus(_ id: String) -> String? { outputs[id] == nil ? nil : "succeeded" }
    }

    func value(_ text: String, _ scope: Scope = Scope()) throws -> JSONValue {
        try Expression.parse(text).evaluate(in: scope)
    }

    @Test("literals, references, comparisons, and/or/not, parentheses")
    func evaluation() throws {
        let scope = Scope(inputs: ["n": .int(3), "name": .string("ada"), "flag": .bool(true)],
                          outputs: ["fetch": .object(["status": .int(200), "items": .array([.string("x")])])])
        #expect(try value("${steps.fetch.output.status} == 200", scope) == .bool(true))
        #expect(try value("${steps.fetch.output.status} == 200.0 and not ${inputs.flag}", scope) == .bool(false))
        #expect(try value("${inputs.n} > 2 && ${inputs.name} != 'bob'", scope) == .bool(true))
        #expect(try value("(${inputs.n} < 2 or ${inputs.name} == \"ada\") and !false", scope) == .bool(true))
        #expect(try value("${steps.fetch.output.items.0}", scope) == .string("x"))
        #expect(try value("${steps.fetch.status} == 'succeeded'", scope) == .bool(true))
        #expect(try value("'abc' < 'abd'") == .bool(true))
        #expect(try value("null == null and -1.5 < 0") == .bool(true))
        #expect(try Expression.parse("${steps.fetch.output.items}").evaluate(in: scope).isTruthy)
    }

    @Test("syntax errors say where; type errors fail at evaluation")
    func errors() throws {
        for (text, message) in [
            ("${inputs.x} = 3", "'=' is not an operator"), ("(1 == 1", "without a matching"), ("1 == ", "ends where a value"),
            ("1 < 2 < 3", "do not chain"), ("foo == 1", "unknown word"), ("'open", "unterminated"), ("${inputs.x", "without a closing"),
            ("import('os')", "unknown word"), (String(repeating: "(", count: 100) + "1" + String(repeating: ")", count: 100), "nested"),
        ] {
            do {
                _ = try Expression.parse(text)
                Issue.record("\(text) should not parse")
            } catch {
                #expect(error.description.contains(message), "\(text): \(error)")
                #expect(error.description.contains("position"))
            }
        }
        #expect(throws: Expression.EvaluationError.self) { try value("'a' < 1") }
        #expect(throws: ResolutionError.self) { try value("${inputs.missing} == 1") }
    }

    @Test("JSON: exact types, canonical text, limits")
    func json() throws {
        let value = try JSONValue.parse(#"{"b": [1, 2.5, true, null, "x\u00e9\n"], "a": {"z": -0, "y": 1e3}}"#)
        #expect(value == .object(["b": .array([.int(1), .double(2.5), .bool(true), .null, .string("xé\n")]), "a": .object(["z": .int(0), "y": .double(1000)])]))
        #expect(value.canonicalText == #"{"a":{"y":1000.0,"z":0},"b":[1,2.5,true,null,"xé\n"]}"#)
        #expect(try JSONValue.parse(value.canonicalText) == value)
        for bad in ["{", "[1,]", "{\"a\" 1}", "01", "\"\u{01}\"", "{\"a\":1,\"a\":2}", "tru", "1 2", String(repeating: "[", count: 65) + String(repeating: "]", count: 65)] {
            #expect(throws: JSONParseError.self, "\(bad.prefix(20))") { try JSONValue.parse(bad) }
        }
    }
}

@Suite("Example workflows")
struct ExampleWorkflowTests {
    @Test("every workflow in examples/ parses, validates and names only bundled skills")
    func examples() throws {
        let directory = Repository.root + "/examples"
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".json") }
        #expect(!files.isEmpty)
        let bundled = Set(try FileManager.default.contentsOfDirectory(atPath: Repository.root + "/skills"))
        for file in files {
            let spec = try SpecParser.parse(String(contentsOfFile: "\(directory)/\(file)", encoding: .utf8))
            let outcome = WorkflowValidator.validate(spec)
            #expect(outcome.errors.isEmpty, "\(file): \(outcome.errors)")
            for step in spec.steps {
                #expect(bundled.contains(step.skill), "\(file): step \(step.id) names \(step.skill), which is not in skills/")
            }
        }
    }
}
