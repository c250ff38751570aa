internal import ArgumentParser
internal import AtomRPC
internal import Foundation

/// `atom reference-broker FRONTEND BACKEND` (hidden): libzmq's own C broker, `zmq_proxy`
/// between a ROUTER for clients and a DEALER for workers, in a process of its own. `atom bench
/// rpc` starts it for its C-broker reference so that the reference has the gateway's shape:
/// client, broker and worker in three processes, each with its own libzmq I/O thread.
struct ReferenceBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference-broker",
        abstract: "libzmq's C broker (zmq_proxy) for the rpc benchmark's reference (internal).",
        shouldDisplay: false)

    @Argument(help: "Endpoint clients connect to (ROUTER).")
    var frontend: String

    @Argument(help: "Endpoint workers connect to (DEALER).")
    var backend: String

    func run() async throws {
        // Started by the benchmark with ATOM_PARENT_PID: never outlives it.
        ParentWatch.start { Foundation.exit(0) }
        let front = try ZMQSocket(.router)
        try front.bind(frontend)
        let back = try ZMQSocket(.dealer)
        try back.bind(backend)
        // zmq_proxy blocks until the context ends: on a thread of its own, off the cooperative
        // pool. SIGTERM ends the process.
        Thread(named: "atom-c-broker", onMessagePath: true) { ZMQSocket.runProxy(frontend: front, backend: back) }.start()
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
