import AtomRPC
import AtomWorkflow
import Foundation

// Settings: see WorkflowConfiguration (WORKFLOW_TIMEOUT_SECONDS, WORKFLOW_CACHE_TTL, ...).
let service: WorkflowServiceImpl
do {
    let environment = try AtomEnvironment()
    // Steps execute through the loader service, reached through the gateway like any client.
    let client = try RPCClient(environment: environment, name: "atom-workflow")
    service = try WorkflowServiceImpl(
        configuration: try WorkflowConfiguration.resolve(home: environment.home), executor: LoaderStepExecutor(client: client))
} catch {
    FileHandle.standardError.write(Data("atom-workflow: \(error)\n".utf8))
    exit(2)
}
await ServiceMain.run(service, label: "atom-workflow")
