internal import Foundation

/// The share of the machine's CPU time that the hypervisor gave to other guests during a
/// benchmark phase (`steal` in `/proc/stat`), in percent: the `host_steal_pct` of a throughput
/// result.
///
/// Why: on a shared virtual machine the same build's 8-caller throughput swings by a fifth from
/// one minute to the next (the C broker's with it), and a phase that ran while the host was
/// busy elsewhere shows it here. Machine-wide, so it is measured whether the stack is the
/// benchmark's own or not. Absent where there is no `/proc/stat`.
struct HostSteal {
    struct Sample: Equatable {
        let steal: UInt64
        /// Every kind of CPU time of every CPU (user, nice, system, idle, iowait, irq, softirq,
        /// steal; guest time is already counted in user and nice).
        let total: UInt64
    }

    /// Now; nil without `/proc/stat`.
    static func sample() -> Sample? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return parse(procStat: text)
    }

    /// Reads the all-CPU line (`cpu  user nice system idle iowait irq softirq steal ...`).
    static func parse(procStat: String) -> Sample? {
        guard let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard fields.count == 8 else { return nil }
        return Sample(steal: fields[7], total: fields.reduce(0, +))
    }

    /// The stolen share of the CPU time between two samples, in percent rounded to 0.1; nil
    /// when either is missing or no time passed.
    static func percent(from start: Sample?, to end: Sample?) -> Double? {
        guard let start, let end, end.total > start.total, end.steal >= start.steal else { return nil }
        return (Double(end.steal - start.steal) / Double(end.total - start.total) * 1_000).rounded() / 10
    }
}
