public import AtomAPI
internal import AtomProto
public import AtomRPC

/// Runs steps through the loader service (`atom.v1.Loader/ExecuteSkill`) via the gateway.
public struct LoaderStepExecutor: StepExecutor {
    public let loader: LoaderClient
    /// How long GetSkill and ListSkills may take.
    public let lookupTimeout: Duration

    public init(client: RPCClient, lookupTimeout: Duration = .seconds(2)) {
        loader = LoaderClient(client)
        self.lookupTimeout = lookupTimeout
    }

    public func execute(skill: String, inputs: String, timeout: Duration) async throws -> String {
        let milliseconds = max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        let request = ExecuteSkillRequest(name: skill, inputsJson: inputs, timeoutMs: UInt32(clamping: milliseconds))
        let response: ExecuteSkillResponse
        let started = ContinuousClock.now
        do {
            do {
                response = try await loader.executeSkill(request, options: CallOptions(timeout: timeout))
            } catch let error as RPCError where error.reason == "SKILL_NOT_LOADED" {
                // Load it by name from the loader's skills directories, then run it (in what is
                // left of the step's time).
                try await load(skill, timeout: timeout)
                let left = timeout - (ContinuousClock.now - started)
                guard left > .zero else { throw RPCError(.deadlineExceeded, "loading skill \(skill) took the step's whole time") }
                response = try await loader.executeSkill(request, options: CallOptions(timeout: left))
            }
        } catch let error as RPCError {
            throw StepFailure(error.code, error.code == .unavailable ? "the loader service is not reachable: \(error.message)" : error.message)
        }
        if let failure = response.failure {
            var message = failure.message
            // The end of the traceback names the line; keep it short.
            if !failure.traceback.isEmpty {
                let lines = failure.traceback.split(separator: "\n").suffix(4).joined(separator: "\n")
                message += "\n" + lines
            }
            throw StepFailure(.unknown, message, errorType: failure.type)
        }
        return response.outputsJson
    }

    /// LoadSkill by name (the loader looks it up in its skills directories).
    func load(_ skill: String, timeout: Duration) async throws {
        _ = try await loader.loadSkill(LoadSkillRequest(name: skill), options: CallOptions(timeout: timeout))
    }

    public func identity(of skill: String) async throws -> String {
        let info: SkillInfo
        do {
            info = try await loader.getSkill(GetSkillRequest(name: skill), options: CallOptions(timeout: lookupTimeout))
        } catch let error as RPCError where error.code == .notFound {
            info = try await loader.loadSkill(LoadSkillRequest(name: skill), options: CallOptions(timeout: lookupTimeout)).skill ?? SkillInfo()
        }
        return "\(info.name)@\(info.version)#\(info.contentHash)"
    }

    /// ListSkills first (one call); names it does not list are looked for with LoadSkill by
    /// name (the loader's skills directories). NOT_FOUND means unknown; an answer about the
    /// skill itself (it fails to import, its manifest is invalid, its packages cannot be
    /// installed) means it exists but cannot be loaded. Only a loader that does not answer
    /// (UNAVAILABLE, DEADLINE_EXCEEDED, ...) leaves the question open: that throws.
    public func skillProblems(among names: Set<String>) async throws -> [String: SkillProblem] {
        let listed = Set(try await loader.listSkills(ListSkillsRequest(), options: CallOptions(timeout: lookupTimeout)).skills.map(\.name))
        let rest = names.subtracting(listed)
        guard !rest.isEmpty else { return [:] }
        let loader = self.loader
        let timeout = lookupTimeout
        return try await withThrowingTaskGroup(of: (String, SkillProblem?).self) { group in
            for name in rest.sorted().prefix(256) {
                group.addTask {
                    do {
                        _ = try await loader.loadSkill(LoadSkillRequest(name: name), options: CallOptions(timeout: timeout))
                        return (name, nil)
                    } catch let error as RPCError where error.code == .notFound {
                        return (name, .unknown)
                    } catch let error as RPCError where Self.isAboutTheSkill(error) {
                        return (name, .notLoadable(error.message))
                    }
                }
            }
            var problems: [String: SkillProblem] = [:]
            for try await (name, problem) in group { problems[name] = problem }
            // Past 256 distinct names, the rest count as unknown unless listed.
            for name in rest.sorted().dropFirst(256) { problems[name] = .unknown }
            return problems
        }
    }

    /// A LoadSkill error that describes the skill (the loader answered), not the loader's or
    /// the gateway's availability.
    static func isAboutTheSkill(_ error: RPCError) -> Bool {
        switch error.code {
        case .invalidArgument, .permissionDenied, .failedPrecondition: true
        default: error.reason.map { ["SKILL_MEMORY", "HOST_CRASHED", "SKILL_IMPORT_FAILED"].contains($0) } ?? false
        }
    }
}
