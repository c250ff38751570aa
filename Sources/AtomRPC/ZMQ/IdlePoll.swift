#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a reactor thread polling for a short window after call traffic, instead of going to
/// sleep in its wait at once.
///
/// Why: a thread that sleeps must be woken, and on a virtual machine whose idle vCPUs halt
/// (guest halt-polling off, as on the machines this runs on) waking a halted vCPU costs tens
/// of microseconds per hop. A brokered call crosses about ten such hops. Polling for a few
/// hundred microseconds after activity is what the kernel's haltpoll cpuidle governor does
/// when it is on; here the reactor does it, so the message that comes next (the reply to a
/// call just forwarded, the next call of a busy client) is picked up with no wake-up at all.
/// Between polls the thread yields, so other runnable threads on its CPU go first.
///
/// Only call traffic (requests, responses, cancels, a handler's answer) opens the window:
/// heartbeats and keepalives do not, so an idle stack stays asleep. And only a lightly loaded
/// reactor polls (at most one call in flight through it): with more, traffic keeps it awake
/// anyway and the CPUs are better spent on the calls. Measured: polling at 8 concurrent callers
/// tripled the context switches per call and cost a third of the throughput.
public struct IdlePoll {
    /// How long after the last call traffic to keep polling; zero turns it off.
    public let window: Duration
    private var lastTraffic: ContinuousClock.Instant
    private var spinning = false

    public init(window: Duration) {
        self.window = window
        lastTraffic = .now - window - .seconds(1)
    }

    /// The window when `ATOM_IDLE_POLL_US` is not set.
    public static let defaultWindow: Duration = .microseconds(500)

    /// Calls in flight through the reactor above which it does not poll.
    public static let maxCallsInFlight = 1

    /// The timeout for the next wait (`ReactorWait`): 0 inside the window when at most
    /// `maxCallsInFlight` calls are in flight, else `blocking`.
    public mutating func timeout(blocking: Int, callsInFlight: Int) -> Int {
        guard window > .zero else { return blocking }
        spinning = callsInFlight <= Self.maxCallsInFlight && ContinuousClock.now - lastTraffic < window
        return spinning ? 0 : blocking
    }

    /// Call traffic was seen: (re)opens the window.
    public mutating func noteCallTraffic() {
        if window > .zero { lastTraffic = .now }
    }

    /// After a poll: one that found nothing inside the window yields the CPU before the next.
    public func polled(readable: Bool) {
        if spinning && !readable { sched_yield() }
    }
}
