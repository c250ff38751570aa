import Foundation
import Testing

@testable import AtomCLI

/// `atom bench rpc` reports how much of the machine's CPU time the hypervisor gave to other
/// guests during each throughput phase: the figure that tells a busy host from slow code.
@Suite("Host steal")
struct HostStealTests {
    @Test("the all-CPU line of /proc/stat gives steal and the total; per-CPU lines and other text do not count")
    func parse() throws {
        let text = """
            cpu  7000 20 1800 4600 30 0 27 40 5 0
            cpu0 3300 10 900 2500 7 0 9 19 0 0
            intr 146 0 0
            """
        let sample = try #require(HostSteal.parse(procStat: text))
        #expect(sample.steal == 40)
        #expect(sample.total == 7000 + 20 + 1800 + 4600 + 30 + 0 + 27 + 40, "guest time is inside user time already")
        #expect(HostSteal.parse(procStat: "cpu0 1 2 3 4 5 6 7 8") == nil, "no all-CPU line")
        #expect(HostSteal.parse(procStat: "cpu  1 2 3 4 5") == nil, "a kernel without the steal field")
        #expect(HostSteal.parse(procStat: "cpu  1 2 x 4 5 6 7 8") == nil)
        #expect(HostSteal.parse(procStat: "") == nil)
    }

    @Test("the share is the stolen part of the time that passed; no time, or a missing sample, gives none")
    func percent() {
        let start = HostSteal.Sample(steal: 100, total: 10_000)
        #expect(HostSteal.percent(from: start, to: HostSteal.Sample(steal: 150, total: 10_400)) == 12.5)
        #expect(HostSteal.percent(from: start, to: HostSteal.Sample(steal: 100, total: 10_300)) == 0)
        #expect(HostSteal.percent(from: start, to: start) == nil)
        #expect(HostSteal.percent(from: nil, to: start) == nil)
        #expect(HostSteal.percent(from: start, to: nil) == nil)
    }

    #if os(Linux)
    @Test("on this machine two samples a moment apart give a share between 0 and 100")
    func live() throws {
        let start = try #require(HostSteal.sample())
        usleep(50_000)
        let share = try #require(HostSteal.percent(from: start, to: HostSteal.sample()))
        #expect((0...100).contains(share))
    }
    #endif
}
