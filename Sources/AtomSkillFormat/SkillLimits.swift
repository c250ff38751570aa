extension SkillManifest.Limits {
    /// `memory` in bytes (`k`, `m`, `g` and their `kb`/`ki`/`kib` spellings are powers of
    /// 1024), or nil when it is not a size the manifest parser accepts.
    public var memoryBytes: UInt64? {
        let lower = memory.lowercased()
        let number = lower.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard let value = Double(number), value > 0 else { return nil }
        let multipliers: [String: Double] = [
            "k": 1_024, "kb": 1_024, "ki": 1_024, "kib": 1_024,
            "m": 1_048_576, "mb": 1_048_576, "mi": 1_048_576, "mib": 1_048_576,
            "g": 1_073_741_824, "gb": 1_073_741_824, "gi": 1_073_741_824, "gib": 1_073_741_824,
        ]
        guard let multiplier = multipliers[String(lower.dropFirst(number.count))] else { return nil }
        return UInt64(value * multiplier)
    }

    /// `cpu` as a number of CPUs, or nil when it is not a number.
    public var cpuCount: Double? { Double(cpu) }
}
