internal import AtomRPC
internal import Foundation
internal import Synchronization

/// Runs the stack's processes as children: restarts a child that crashes (with backoff), stops
/// them all on SIGINT or SIGTERM, and gives up on a child that fails at start with a
/// configuration error (exit code 2) instead of restarting it forever.
final class Supervisor: Sendable {
    struct Child: @unchecked Sendable {
        let process: Process
    }

    private struct State {
        var running: [String: Child] = [:]
        var stopping = false
        var fatal: String?
    }

    let components: [StackComponent]
    let environment: [String: String]
    /// Variables that differ per component (by name), over `environment`.
    let overrides: [String: [String: String]]
    private let state = Mutex(State())
    private let log: @Sendable (String) -> Void

    init(
        components: [StackComponent], environment: [String: String], overrides: [String: [String: String]] = [:],
        log: @escaping @Sendable (String) -> Void
    ) {
        self.components = components
        self.environment = environment
        self.overrides = overrides
        self.log = log
    }

    /// Runs until stopped; returns the failure that ended the stack, if any.
    func run() async -> String? {
        let executables: [(StackComponent, String)]
        do {
            executables = try components.map { ($0, try ExecutableLocator.path(for: $0.executable)) }
        } catch {
            return "\(error)"
        }
        await withDiscardingTaskGroup { group in
            for (component, path) in executables {
                group.addTask { await self.supervise(component, path: path) }
                // Give the gateway a head start; services would wait for it anyway.
                if component.service == nil { try? await Task.sleep(for: .milliseconds(100)) }
            }
        }
        return state.withLock { $0.fatal }
    }

    /// Stops every child: SIGTERM, then SIGKILL for any still running after `grace`.
    func stop(grace: Duration = .seconds(10)) {
        let children = state.withLock { state in
            state.stopping = true
            return Array(state.running.values)
        }
        for child in children where ChildLiveness.isRunning(child.process) { Foundation.kill(child.process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        Thread.detachNewThread {
            while ContinuousClock.now < deadline {
                if children.allSatisfy({ !ChildLiveness.isRunning($0.process) }) { return }
                usleep(50_000)
            }
            for child in children where ChildLiveness.isRunning(child.process) { Foundation.kill(child.process.processIdentifier, SIGKILL) }
        }
    }

    /// Kills every child at once (a second Ctrl-C).
    func killAll() {
        let children = state.withLock { Array($0.running.values) }
        for child in children where ChildLiveness.isRunning(child.process) { Foundation.kill(child.process.processIdentifier, SIGKILL) }
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    private func supervise(_ component: StackComponent, path: String) async {
        var backoff = Duration.milliseconds(200)
        while !isStopping {
            let startedAt = ContinuousClock.now
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.environment = environment.merging(overrides[component.name] ?? [:]) { $1 }
            do {
                try process.run()
            } catch {
                log("\(component.name): cannot start \(path): \(error)")
                stop()
                return
            }
            let accepted = state.withLock { state -> Bool in
                guard !state.stopping else { return false }
                state.running[component.name] = Child(process: process)
                return true
            }
            if !accepted { Foundation.kill(process.processIdentifier, SIGTERM) }
            log("\(component.name): started (pid \(process.processIdentifier))")
            // Polled rather than awaited through terminationHandler (see ChildLiveness), 5 times
            // a second: a restart a few hundred milliseconds sooner helps nobody, and an idle
            // stack should cost next to no CPU.
            while ChildLiveness.isRunning(process) {
                try? await Task.sleep(for: .milliseconds(200))
            }
            let status: Int32? = ChildLiveness.status(process)
            state.withLock { _ = $0.running.removeValue(forKey: component.name) }
            if isStopping {
                log("\(component.name): stopped")
                return
            }
            let uptime = ContinuousClock.now - startedAt
            if status == 2 && uptime < .seconds(3) {
                // A configuration error (bad endpoint, port in use): restarting cannot help.
                let message = "\(component.name) failed at start (exit code 2); see its message above"
                state.withLock { if $0.fatal == nil { $0.fatal = message } }
                log(message)
                stop()
                return
            }
            if uptime > .seconds(10) { backoff = .milliseconds(200) }
            log("\(component.name): exited with status \(status.map(String.init) ?? "?"); restarting in \(backoff)")
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }
}
