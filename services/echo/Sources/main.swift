import AtomEcho
import AtomRPC
import Foundation

// ATOM_ECHO_RAW_ENDPOINT: also answer plain ZeroMQ REQ/REP there (the benchmark's baseline).
if let raw = ProcessInfo.processInfo.environment["ATOM_ECHO_RAW_ENDPOINT"], !raw.isEmpty {
    do {
        try RawEchoResponder.start(endpoint: raw)
    } catch {
        FileHandle.standardError.write(Data("atom-echo: cannot bind ATOM_ECHO_RAW_ENDPOINT=\(raw): \(error)\n".utf8))
        exit(2)
    }
}
// ATOM_ECHO_RAW_WORKER_ENDPOINT: also answer as a plain REP worker connected to a C broker there
// (the benchmark's reference for a brokered call without this project's code in the broker).
if let worker = ProcessInfo.processInfo.environment["ATOM_ECHO_RAW_WORKER_ENDPOINT"], !worker.isEmpty {
    do {
        try RawEchoResponder.start(endpoint: worker, connect: true)
    } catch {
        FileHandle.standardError.write(Data("atom-echo: cannot connect ATOM_ECHO_RAW_WORKER_ENDPOINT=\(worker): \(error)\n".utf8))
        exit(2)
    }
}
// Echo's handlers only await (sleep, stream writes), never block: they run on the reactor
// thread, with no thread hop per call.
await ServiceMain.run(EchoServiceImpl(), label: "atom-echo", handlerExecution: .reactorThread)
