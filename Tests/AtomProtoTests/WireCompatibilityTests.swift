import AtomProto
import Testing

/// Our encoder and decoder against protoc's own (C++) text-format codec.
@Suite struct WireCompatibilityTests {
    static let envelope = RequestEnvelope(
        service: "atom.v1.Echo", method: "Echo", callId: 18_446_744_073_709_551_615, timeoutMs: 1500,
        metadata: [MetadataEntry(key: "request-id", value: "r-1"), MetadataEntry(key: "caller", value: "")],
        payload: [0x01, 0x02, 0xFF, 0x00]
    )
    static let envelopeText = """
        service: "atom.v1.Echo"
        method: "Echo"
        call_id: 18446744073709551615
        timeout_ms: 1500
        metadata {
          key: "request-id"
          value: "r-1"
        }
        metadata {
          key: "caller"
        }
        payload: "\\001\\002\\377\\000"

        """

    static let spec = WorkflowSpec(
        name: "build",
        steps: [
            WorkflowStep(id: "fetch", skill: "http.get", inputsJson: #"{"url":"${inputs.url}"}"#, timeoutSeconds: 30),
            WorkflowStep(
                id: "parse", skill: "json.parse", dependsOn: ["fetch"],
                retry: RetryPolicy(maxAttempts: 3, initialBackoffMs: 100, multiplier: 2.5, retryOn: [.unavailable, .unrecognized(99)]),
                condition: "steps.fetch.ok", cacheTtlSeconds: 60
            ),
        ],
        timeoutSeconds: 600, parallelism: 4, failFast: true
    )
    static let specText = """
        name: "build"
        steps {
          id: "fetch"
          skill: "http.get"
          inputs_json: "{\\"url\\":\\"${inputs.url}\\"}"
          timeout_seconds: 30
        }
        steps {
          id: "parse"
          skill: "json.parse"
          depends_on: "fetch"
          retry {
            max_attempts: 3
            initial_backoff_ms: 100
            multiplier: 2.5
            retry_on: STATUS_CODE_UNAVAILABLE
            retry_on: 99
          }
          condition: "steps.fetch.ok"
          cache_ttl_seconds: 60
        }
        timeout_seconds: 600
        parallelism: 4
        fail_fast: true

        """

    static let event = InstallEvent(
        phase: .done, message: "installed", progress: 1,
        result: InstallResult(
            success: true, environmentId: "env-abc", cached: false,
            locked: [LockedPackage(name: "requests", version: "2.28.0"), LockedPackage(name: "idna", version: "3.4")],
            durationMs: 1234, warnings: ["slow mirror"], skillId: "skill-1"
        )
    )
    static let eventText = """
        phase: INSTALL_PHASE_DONE
        message: "installed"
        progress: 1
        result {
          success: true
          environment_id: "env-abc"
          locked {
            name: "requests"
            version: "2.28.0"
          }
          locked {
            name: "idna"
            version: "3.4"
          }
          duration_ms: 1234
          warnings: "slow mirror"
          skill_id: "skill-1"
        }

        """

    @Test func requestEnvelope() throws {
        #expect(try protocDecode("RequestEnvelope", file: "rpc.proto", Self.envelope.serializedBytes()) == Self.envelopeText)
        #expect(try RequestEnvelope(serializedBytes: protocEncode("RequestEnvelope", file: "rpc.proto", Self.envelopeText)) == Self.envelope)
    }

    @Test func workflowSpec() throws {
        #expect(try protocDecode("WorkflowSpec", file: "workflow.proto", Self.spec.serializedBytes()) == Self.specText)
        #expect(try WorkflowSpec(serializedBytes: protocEncode("WorkflowSpec", file: "workflow.proto", Self.specText)) == Self.spec)
    }

    @Test func installEvent() throws {
        #expect(try protocDecode("InstallEvent", file: "installer.proto", Self.event.serializedBytes()) == Self.eventText)
        #expect(try InstallEvent(serializedBytes: protocEncode("InstallEvent", file: "installer.proto", Self.eventText)) == Self.event)
    }

    @Test func nestedTypeAndUnicode() throws {
        let plan = WorkflowPlan(order: ["a"], levels: [.init(stepIds: ["a", "b"])], depth: 1, width: 2)
        let text = """
            order: "a"
            levels {
              step_ids: "a"
              step_ids: "b"
            }
            depth: 1
            width: 2

            """
        #expect(try protocDecode("WorkflowPlan", file: "workflow.proto", plan.serializedBytes()) == text)
        let level = WorkflowPlan.Level(stepIds: ["字🚀"])
        #expect(try WorkflowPlan.Level(serializedBytes: protocEncode("WorkflowPlan.Level", file: "workflow.proto", #"step_ids: "字🚀""#)) == level)
        // protoc and protobuf-c agree byte for byte on this message.
        #expect(try protocEncode("WorkflowPlan.Level", file: "workflow.proto", #"step_ids: "字🚀""#) == level.serializedBytes())
    }
}
