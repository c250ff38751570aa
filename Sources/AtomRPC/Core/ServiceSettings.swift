/// The settings of one service (installer, loader, marketplace, workflow), read from the process
/// environment and the config file (`AtomSettings`), validated once at start. An invalid value is
/// an `AtomEnvironment.InvalidSetting` that names the variable and what it accepts.
public protocol ServiceSettings {
    /// The settings from these variables; `home` is `ATOM_HOME`.
    init(home: String, environment: [String: String]) throws
}

extension ServiceSettings {
    /// Reads the process environment and the config file. (A named function, not an `init(home:)`:
    /// a configuration's own initializer with defaulted parameters would silently win over it.)
    public static func resolve(home: String) throws -> Self {
        let values: [String: String]
        do {
            values = try AtomSettings.resolve().values
        } catch {
            throw AtomEnvironment.InvalidSetting(description: "\(error)")
        }
        return try Self(home: home, environment: values)
    }

    /// An integer setting in `range`; unset or empty gives `value`.
    public static func integer(_ environment: [String: String], _ key: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        try AtomEnvironment.integer(environment, key, default: value, range: range)
    }

    /// A boolean setting (1/true/yes/on, 0/false/no/off); unset or empty gives `value`.
    public static func boolean(_ environment: [String: String], _ key: String, default value: Bool) throws -> Bool {
        try AtomEnvironment.boolean(environment, key, default: value)
    }
}
