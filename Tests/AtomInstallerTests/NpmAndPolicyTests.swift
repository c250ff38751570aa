import AtomInstaller
import Testing

@Suite("npm semver ranges")
struct NpmRangeTests {
    func allows(_ range: String, _ version: String) throws -> Bool {
        let parsed = try NpmRange.parse(range).get()
        return parsed.allowed.contains(try #require(SemVer(version)))
    }

    @Test("ranges allow what npm's semver says", arguments: [
        ("^1.2.3", "1.9.0", true), ("^1.2.3", "2.0.0", false), ("^1.2.3", "1.2.2", false), ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false), ("^0.0.3", "0.0.4", false), ("^0.0.3", "0.0.3", true), ("^1", "1.99.0", true), ("^0.x", "0.9.0", true),
        ("~1.2.3", "1.2.9", true), ("~1.2.3", "1.3.0", false), ("~1.2", "1.2.0", true), ("~1", "1.9.9", true), ("~1", "2.0.0", false),
        ("1.x", "1.5.5", true), ("1.x", "2.0.0", false), ("1.2.x", "1.2.7", true), ("*", "9.9.9", true), ("", "0.0.1", true),
        ("1.2.3 - 2.3.4", "2.3.4", true), ("1.2.3 - 2.3.4", "2.3.5", false), ("1.2 - 2.3", "2.3.9", true), ("1.2 - 2.3", "2.4.0", false),
        (">=1.0.0 <2.0.0", "1.5.0", true), (">=1.0.0 <2.0.0", "2.0.0", false), ("<1.0.0 || >=2.0.0", "1.5.0", false),
        ("<1.0.0 || >=2.0.0", "2.1.0", true), (">1.2", "1.2.9", false), (">1.2", "1.3.0", true), ("<=1.2", "1.2.9", true),
        ("=1.2.3", "1.2.3", true), ("v1.2.3", "1.2.3", true), (">= 1.2.3", "1.2.4", true), ("1.2.3", "1.2.3-beta", false),
        (">=1.2.3-alpha.1", "1.2.3-alpha.2", true), ("latest", "3.0.0", true),
    ])
    func membership(example: (String, String, Bool)) throws {
        #expect(try allows(example.0, example.1) == example.2, "\(example.0) allows \(example.1): \(example.2)")
    }

    @Test("semver ordering")
    func ordering() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0"]
        let versions = try ordered.map { try #require(SemVer($0)) }
        for (a, b) in zip(versions, versions.dropFirst()) { #expect(a < b, "\(a) < \(b)") }
    }

    @Test("npm requirements and conflicts")
    func requirements() throws {
        let scoped = try NpmRequirement.parse("@types/node@^20")
        #expect(scoped.name == "@types/node")
        #expect(try NpmRequirement.parse("lodash").range.allowed.contains(try #require(SemVer("4.17.21"))))
        let parse = { (texts: [String]) in ConflictDetector.conflicts(try texts.map { try ParsedRequirement.parse($0, ecosystem: .npm) }) }
        #expect(try parse(["lodash@^4", "lodash@>=4.17 <5"]).isEmpty)
        #expect(try parse(["lodash@^4", "lodash@^3"]).count == 1)
        #expect(try parse(["a@~1.2", "a@1.3.x"]).count == 1)
        #expect(try parse(["a@1.x || 3.x", "a@^3.1"]).isEmpty)
    }

    @Test("malformed npm requirements name the position", arguments: [
        ("", 0), ("Lodash@1", 0), ("lo dash", 2), ("lodash@", 7), ("lodash@^", 8), ("lodash@1.2.3.4", 7), ("@scope", 6), ("@/x", 1),
        (".hidden", 0), ("lodash@>=1 <", 12), ("lodash@1 - x.y", 11),
    ])
    func malformed(example: (String, Int)) {
        do {
            let parsed = try NpmRequirement.parse(example.0)
            Issue.record("\(example.0) parsed as \(parsed.name) \(parsed.range.text)")
        } catch {
            #expect(error.position == example.1, "\(example.0): \(error)")
        }
    }
}

@Suite("Supply-chain policy and limits")
struct PolicyTests {
    func parsed(_ texts: [String]) throws -> [ParsedRequirement] {
        try texts.map { try ParsedRequirement.parse($0, ecosystem: .python) }
    }

    @Test("edit distance")
    func distance() {
        #expect(PopularPackages.editDistance("requests", "requests") == 0)
        #expect(PopularPackages.editDistance("reqeusts", "requests") == 1)
        #expect(PopularPackages.editDistance("requets", "requests") == 1)
        #expect(PopularPackages.editDistance("kitten", "sitting") == 3)
        #expect(PopularPackages.editDistance("", "abc") == 3)
    }

    @Test("typosquats warn, refuse, or pass", arguments: ["reqeusts", "requets", "numpyy", "pandsa", "Reqeusts", "djang0"])
    func typosquat(name: String) throws {
        let warn = SupplyChainPolicy().evaluate(try parsed([name]), ecosystem: .python)
        #expect(warn.allowed && warn.warnings.count == 1, "\(name): \(warn)")
        let refuse = SupplyChainPolicy(typosquat: .refuse).evaluate(try parsed([name]), ecosystem: .python)
        #expect(!refuse.allowed)
        #expect(SupplyChainPolicy(typosquat: .off).evaluate(try parsed([name]), ecosystem: .python).warnings.isEmpty)
    }

    @Test("real popular names and unrelated names are not typosquats", arguments: ["requests", "numpy", "Django", "my-own-tool", "alpha", "six", "abc"])
    func notTyposquat(name: String) throws {
        #expect(SupplyChainPolicy().evaluate(try parsed([name]), ecosystem: .python).warnings.isEmpty, "\(name)")
    }

    @Test("deny list and allow list use normalised names")
    func denyAllow() throws {
        let deny = SupplyChainPolicy(deny: ["evil-pkg"])
        #expect(!deny.evaluate(try parsed(["Evil_Pkg==1.0"]), ecosystem: .python).allowed)
        #expect(deny.evaluate(try parsed(["good==1.0"]), ecosystem: .python).allowed)
        let allow = SupplyChainPolicy(allow: ["alpha"])
        #expect(allow.evaluate(try parsed(["ALPHA>=1"]), ecosystem: .python).allowed)
        let refused = allow.evaluate(try parsed(["alpha", "beta"]), ecosystem: .python)
        #expect(refused.refusals.count == 1 && refused.refusals[0].contains("beta"))
    }

    static let memoryExamples: [(String, UInt64)] = [
        ("512m", 536_870_912), ("1g", 1_073_741_824), ("1G", 1_073_741_824), ("1.5g", 1_610_612_736),
        ("256Mi", 268_435_456), ("2GB", 2_147_483_648), ("", 0), ("1048576", 1_048_576),
    ]

    @Test("memory limits", arguments: memoryExamples)
    func memory(example: (String, UInt64)) throws {
        #expect(try ResourceLimits.parseMemory(example.0).get() == example.1)
    }

    @Test("bad memory limits", arguments: ["512x", "m", "-1g", "1.2.3g", "10k", "99999999t", "1 g b"])
    func badMemory(text: String) {
        #expect(throws: SpecifierProblem.self) { try ResourceLimits.parseMemory(text).get() }
    }

    @Test("cpu limits")
    func cpu() throws {
        #expect(try ResourceLimits.parseCPU("0.5").get() == 0.5)
        #expect(try ResourceLimits.parseCPU("2").get() == 2)
        #expect(try ResourceLimits.parseCPU("").get() == 0)
        for bad in ["0", "-1", "abc", "1e3", "5000", "0.5x"] {
            #expect(throws: SpecifierProblem.self, "\(bad)") { try ResourceLimits.parseCPU(bad).get() }
        }
    }
}
