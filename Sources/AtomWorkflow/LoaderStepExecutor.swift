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
        do {
            response = try await loader.executeSkill(request, options: CallOptions(timeout: timeout))
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

    public func identity(of skill: String) async throws -> String {
        let info = try await loader.getSkill(GetSkillRequest(name: skill), options: CallOptions(timeout: lookupTimeout))
        return "\(info.name)@\(info.version)#\(info.contentHash)"
    }

    /// ListSkills first (one call); names it does not list are asked one by one with
    /// GetSkill, which may find skills the loader has not loaded yet. NOT_FOUND means unknown.
    public func unknownSkills(among names: Set<String>) async throws -> Set<String> {
        let listed = Set(try await loader.listSkills(ListSkillsRequest(), options: CallOptions(timeout: lookupTimeout)).skills.map(\.name))
        let rest = names.subtracting(listed)
        guard !rest.isEmpty else { return [] }
        let loader = self.loader
        let timeout = lookupTimeout
        return try await withThrowingTaskGroup(of: String?.self) { group in
            for name in rest.sorted().prefix(256) {
                group.addTask {
                    do {
                        _ = try await loader.getSkill(GetSkillRequest(name: name), options: CallOptions(timeout: timeout))
                        return nil
                    } catch let error as RPCError where error.code == .notFound {
                        return name
                    }
                }
            }
            var unknown = Set<String>()
            for try await name in group { if let name { unknown.insert(name) } }
            // Past 256 distinct names, the rest count as unknown unless listed.
            unknown.formUnion(rest.sorted().dropFirst(256))
            return unknown
        }
    }
}
