internal import HeapModule

/// The deadlines of a reactor's calls, earliest first.
///
/// A call that ends before its deadline (nearly every call) leaves its entry behind: taking it
/// out as the call ends, or as it reaches the top, cost a heap removal on every call, about 3%
/// of a client reactor's time under 8 callers, all to serve the rare call that times out.
/// Instead an entry is checked when it comes due (`removeDue`: the owner ignores entries whose
/// call is no longer live), and left-behind entries are dropped in one pass when they outnumber
/// the calls in flight (`compact`, on every pass of the reactor), so the queue holds at most
/// about twice those plus a constant. An entry carries its deadline as well as its call id: a
/// server's call ids come from the gateway, which numbers calls afresh when it restarts, so an
/// id alone could match a newer call.
struct DeadlineQueue {
    private var heap = Heap<DeadlineEntry>()

    /// Extra entries allowed beyond twice the live calls before a pass drops the ended ones.
    static let slack = 64

    var count: Int { heap.count }

    mutating func insert(_ deadline: ContinuousClock.Instant, id: UInt64) {
        heap.insert(DeadlineEntry(deadline: deadline, id: id))
    }

    /// The earliest deadline, possibly of a call that has ended (an early wake-up at worst).
    var earliest: ContinuousClock.Instant? { heap.min?.deadline }

    /// Removes every entry due at `now`, earliest first, and hands it to `body`.
    mutating func removeDue(at now: ContinuousClock.Instant, _ body: (DeadlineEntry) -> Void) {
        while let top = heap.min, top.deadline <= now {
            heap.removeMin()
            body(top)
        }
    }

    /// Drops the entries of ended calls once they outnumber the live ones: `live` is how many
    /// calls may still need their deadline, `isLive` tells which.
    mutating func compact(live: Int, isLive: (DeadlineEntry) -> Bool) {
        if live == 0 {
            if !heap.isEmpty { heap = Heap() }
        } else if heap.count > 2 * live + Self.slack {
            heap = Heap(heap.unordered.filter(isLive))
        }
    }
}

struct DeadlineEntry: Comparable {
    let deadline: ContinuousClock.Instant
    let id: UInt64

    static func < (lhs: DeadlineEntry, rhs: DeadlineEntry) -> Bool {
        (lhs.deadline, lhs.id) < (rhs.deadline, rhs.id)
    }
}
