/// Asks again until `check` holds or `timeout` passes, and says whether it held. For figures
/// that are eventually there, such as metrics gathered by a fan-out that an instance on a loaded
/// machine may answer after its deadline; never for timing a feature.
public func eventually(
    timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(100),
    _ check: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await check() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
