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
/// heartbeats and keepalives do not, so an idle stack stays asleep.
///
/// How many calls may be in flight for the reactor to still poll is the owner's choice
/// (`maxCallsInFlight`), because polling under load helps one role and hurts another:
/// - A client polls only when lightly loaded (one call in flight): with more, its replies keep
///   it awake anyway, and a client that polled with 8 callers cost a third of the throughput.
/// - The gateway polls at any load. Its yields let its own I/O thread and the other
///   processes' threads run on its CPU without a cross-CPU wake-up. Measured in 16
///   interleaved pairs of `atom bench rpc --rounds 500 --seconds 2`: the 8-caller median rose
///   from 18,000 to 18,700 calls/s (from 0.79 to 0.82 of the C broker in the same runs; best
///   run 19,400 to 21,300) and the unary median fell from 226 to 214 us. The spread widened
///   (worst run 15,800 to 14,000): how the scheduler places the threads matters more.
/// - Service instances do not poll (measured: it cost 8-caller throughput and did not move the
///   unary median).
public struct IdlePoll {
    /// How long after the last call traffic to keep polling; zero turns it off.
    public let window: Duration
    private var lastTraffic: ContinuousClock.Instant
    /// Calls in flight through the reactor above which it sleeps even inside the window; nil:
    /// no limit.
    public let maxCallsInFlight: Int?
    private var spinning = false

    public init(window: Duration, maxCallsInFlight: Int? = Self.lightLoad) {
        self.window = window
        self.maxCallsInFlight = maxCallsInFlight
        lastTraffic = .now - window - .seconds(1)
    }

    /// The window when `ATOM_IDLE_POLL_US` is not set.
    public static let defaultWindow: Duration = .microseconds(500)

    /// A lightly loaded reactor: at most one call in flight.
    public static let lightLoad = 1

    /// The timeout for the next wait (`ReactorWait`): 0 inside the window when at most
    /// `maxCallsInFlight` calls are in flight, else `blocking`.
    public mutating func timeout(blocking: Int, callsInFlight: Int) -> Int {
        guard window > .zero else { return blocking }
        spinning = callsInFlight <= (maxCallsInFlight ?? .max) && ContinuousClock.now - lastTraffic < window
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
