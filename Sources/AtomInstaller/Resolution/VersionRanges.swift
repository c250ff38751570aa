/// One end of an interval of versions.
public enum Bound<V: Comparable & Sendable>: Sendable {
    case unbounded
    case inclusive(V)
    case exclusive(V)
}

/// A contiguous range of versions.
public struct VersionInterval<V: Comparable & Sendable>: Sendable {
    public var lower: Bound<V>
    public var upper: Bound<V>

    public init(lower: Bound<V>, upper: Bound<V>) {
        self.lower = lower
        self.upper = upper
    }

    public static var all: Self { Self(lower: .unbounded, upper: .unbounded) }
    public static func exactly(_ value: V) -> Self { Self(lower: .inclusive(value), upper: .inclusive(value)) }

    public var isEmpty: Bool {
        switch (lower, upper) {
        case (.unbounded, _), (_, .unbounded): false
        case (.inclusive(let a), .inclusive(let b)): b < a
        case (.inclusive(let a), .exclusive(let b)), (.exclusive(let a), .inclusive(let b)), (.exclusive(let a), .exclusive(let b)): !(a < b)
        }
    }

    public func contains(_ value: V) -> Bool {
        switch lower {
        case .unbounded: break
        case .inclusive(let a): if value < a { return false }
        case .exclusive(let a): if !(a < value) { return false }
        }
        switch upper {
        case .unbounded: return true
        case .inclusive(let b): return !(b < value)
        case .exclusive(let b): return value < b
        }
    }

    public func intersection(_ other: Self) -> Self {
        Self(lower: Self.tighterLower(lower, other.lower), upper: Self.tighterUpper(upper, other.upper))
    }

    static func tighterLower(_ a: Bound<V>, _ b: Bound<V>) -> Bound<V> {
        switch (a, b) {
        case (.unbounded, _): return b
        case (_, .unbounded): return a
        default:
            let (x, xIn) = a.valueAndInclusive!, (y, yIn) = b.valueAndInclusive!
            if x < y { return b }
            if y < x { return a }
            return xIn && yIn ? a : .exclusive(x)
        }
    }

    static func tighterUpper(_ a: Bound<V>, _ b: Bound<V>) -> Bound<V> {
        switch (a, b) {
        case (.unbounded, _): return b
        case (_, .unbounded): return a
        default:
            let (x, xIn) = a.valueAndInclusive!, (y, yIn) = b.valueAndInclusive!
            if x < y { return a }
            if y < x { return b }
            return xIn && yIn ? a : .exclusive(x)
        }
    }
}

extension Bound {
    var valueAndInclusive: (V, Bool)? {
        switch self {
        case .unbounded: nil
        case .inclusive(let value): (value, true)
        case .exclusive(let value): (value, false)
        }
    }
}

/// A union of intervals: what one requirement (or several together) allows.
public struct VersionSet<V: Comparable & Sendable>: Sendable {
    public var intervals: [VersionInterval<V>]

    public init(_ intervals: [VersionInterval<V>]) {
        self.intervals = intervals.filter { !$0.isEmpty }
    }

    public static var all: Self { Self([.all]) }
    public static var none: Self { Self([]) }

    public var isEmpty: Bool { intervals.isEmpty }

    public func contains(_ value: V) -> Bool { intervals.contains { $0.contains(value) } }

    public func intersection(_ other: Self) -> Self {
        var result: [VersionInterval<V>] = []
        for a in intervals {
            for b in other.intervals {
                let both = a.intersection(b)
                if !both.isEmpty { result.append(both) }
            }
        }
        return Self(result)
    }

    public func union(_ other: Self) -> Self { Self(intervals + other.intervals) }
}
