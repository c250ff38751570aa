import AtomInstaller
import Testing

@Suite("PEP 440 versions")
struct PEP440VersionTests {
    func v(_ text: String) throws -> PythonVersion { try #require(PythonVersion(text), "\(text) should parse") }

    @Test("ordering follows PEP 440", arguments: [
        ("1.0.dev0", "1.0a1"), ("1.0a1", "1.0a2"), ("1.0a2", "1.0b1"), ("1.0b1", "1.0rc1"), ("1.0rc1", "1.0"),
        ("1.0", "1.0.post1"), ("1.0.post1", "1.0.1"), ("1.0a1.dev1", "1.0a1"), ("1.0.post1.dev1", "1.0.post1"),
        ("1.0", "1.0+local"), ("1.0+abc", "1.0+1"), ("1.0+1", "1.0+1.1"), ("1!0.1", "1!1.0"), ("2.0", "1!0.1"),
        ("1.9", "1.10"), ("1.0.0.0.1", "1.0.1"), ("0.9.post5", "1.0.dev0"),
    ])
    func ordering(pair: (String, String)) throws {
        #expect(try v(pair.0) < v(pair.1), "\(pair.0) < \(pair.1)")
        #expect(!(try v(pair.1) < v(pair.0)))
    }

    @Test("equal spellings", arguments: [
        ("1.0", "1.0.0"), ("1.0", "1"), ("1.0a1", "1.0alpha1"), ("1.0a1", "1.0-a.1"), ("1.0b2", "1.0beta2"),
        ("1.0rc1", "1.0c1"), ("1.0rc1", "1.0pre1"), ("1.0rc1", "1.0preview1"), ("1.0.post1", "1.0-1"), ("1.0.post1", "1.0.rev1"),
        ("1.0.post0", "1.0.post"), ("1.0.dev0", "1.0dev"), ("1.0a0", "1.0a"), ("v1.2", "1.2"), ("1.0RC1", "1.0rc1"),
        ("0!1.0", "1.0"), ("1.0_post2", "1.0.post2"), ("1.0+ubuntu-1", "1.0+ubuntu.1"),
    ])
    func equalSpellings(pair: (String, String)) throws {
        #expect(try v(pair.0) == v(pair.1), "\(pair.0) == \(pair.1)")
        #expect(try v(pair.0).hashValue == v(pair.1).hashValue)
    }

    @Test("malformed versions are rejected", arguments: ["", "a", "1..0", "1.0.", "1.0+", "1.0+a..b", "1.0 2", "1.0-", "1!", "!1", "1.0_", "1.0+Ä", "x1.0", "1.0.post.1a"])
    func malformed(text: String) {
        #expect(PythonVersion(text) == nil, "\(text) must not parse")
    }

    @Test("description is normalised")
    func normalised() throws {
        #expect(try v("1.0-ALPHA.1").description == "1.0a1")
        #expect(try v("2!1.0.post3.dev4+Local.7").description == "2!1.0.post3.dev4+local.7")
        #expect(try v("1.0-1").description == "1.0.post1")
    }
}

@Suite("PEP 440 specifiers")
struct SpecifierTests {
    func allows(_ requirement: String, _ version: String) throws -> Bool {
        let parsed = try PythonRequirement.parse(requirement)
        return parsed.allowed.contains(try #require(PythonVersion(version)))
    }

    @Test("specifiers allow what PEP 440 says", arguments: [
        ("x>=1.20", "1.20", true), ("x>=1.20", "1.19.9", false), ("x<2", "1.99", true), ("x<2", "2.0", false),
        ("x<2", "2.0rc1", false), ("x<2.0rc2", "2.0rc1", true), ("x>1.0", "1.0.post1", false), ("x>1.0", "1.0.1", true),
        ("x>1.0.post1", "1.0.post2", true), ("x<=1.0", "1.0", true), ("x<=1.0", "1.0+local", true), ("x<=1.0", "1.0.post1", false),
        ("x==1.*", "1.9.9", true), ("x==1.*", "2.0", false), ("x==1.*", "1.0a1", true), ("x==1.4.*", "1.4.7", true),
        ("x==1.4.*", "1.5", false), ("x!=1.*", "1.5", false), ("x!=1.*", "2.0", true), ("x!=1.5", "1.5.0", false),
        ("x!=1.5", "1.5.1", true), ("x~=2.2", "2.9", true), ("x~=2.2", "3.0", false), ("x~=2.2", "2.1", false),
        ("x~=1.4.5", "1.4.9", true), ("x~=1.4.5", "1.5.0", false), ("x==1.0", "1.0+abc", true), ("x==1.0+abc", "1.0", false),
        ("x==1.0", "1.0.post1", false), ("x===1.0", "1.0", true), ("x==1!2.0", "2.0", false), ("x>=1!0", "99", false),
        ("x>=1.0,<2.0,!=1.5", "1.5", false), ("x>=1.0,<2.0,!=1.5", "1.6", true), ("x (>=1.0, <2)", "1.2", true),
    ])
    func membership(example: (String, String, Bool)) throws {
        #expect(try allows(example.0, example.1) == example.2, "\(example.0) allows \(example.1): \(example.2)")
    }

    @Test("bad specifiers are rejected with a position", arguments: [
        ("x==", 3), ("x>=1.0,", 7), ("x~=1", 3), ("x>=1.*", 3), ("x==1.0+abc.*", 3), ("x<1.0+abc", 2), ("x=>1.0", 1), ("x>=1.0 foo", 3),
    ])
    func badSpecifier(example: (String, Int)) {
        #expect(throws: RequirementError.self) { try PythonRequirement.parse(example.0) }
        do {
            _ = try PythonRequirement.parse(example.0)
        } catch {
            #expect(error.position == example.1, "\(example.0): \(error)")
        }
    }
}

@Suite("PEP 508 requirements")
struct RequirementParsingTests {
    @Test("valid requirements parse")
    func valid() throws {
        let requests = try PythonRequirement.parse("requests[security, socks] >=2.8.1, ==2.8.* ; python_version < \"2.7\"")
        #expect(requests.name == "requests")
        #expect(requests.extras == ["security", "socks"])
        #expect(requests.specifiers.map(\.description) == [">=2.8.1", "==2.8.*"])
        #expect(requests.marker == "python_version < \"2.7\"")
        let bare = try PythonRequirement.parse("Django")
        #expect(bare.specifiers.isEmpty && bare.extras.isEmpty && bare.url == nil)
        let url = try PythonRequirement.parse("pip @ https://github.com/pypa/pip/archive/1.3.1.zip#sha1=da9234ee9982d4bbb3c72346a6de940a148ea686")
        #expect(url.url?.hasPrefix("https://") == true)
        let parens = try PythonRequirement.parse("name (>=1.0)")
        #expect(parens.specifiers.count == 1)
        let marker = try PythonRequirement.parse("name; os_name=='a' or (os_name=='b' and python_version >= '3.8')")
        #expect(!marker.marker.isEmpty)
        #expect(try PythonRequirement.parse("a.b-c_d==1").normalizedName == "a-b-c-d")
    }

    @Test("PEP 503 normalisation", arguments: [
        ("NumPy", "numpy"), ("Foo.Bar", "foo-bar"), ("foo__bar", "foo-bar"), ("foo-._bar", "foo-bar"), ("FOO", "foo"), ("a1", "a1"),
    ])
    func normalisation(pair: (String, String)) {
        #expect(PythonRequirement.normalize(pair.0) == pair.1)
    }

    @Test("canonical spelling ignores case, order and spacing")
    func canonical() throws {
        let a = try PythonRequirement.parse("NumPy >= 1.20 , <2")
        let b = try PythonRequirement.parse("numpy<2,>=1.20")
        #expect(a.canonical == b.canonical)
    }

    @Test("malformed requirements name the position", arguments: [
        ("", 0), ("==1.0", 0), ("-foo", 0), ("foo-", 3), ("foo[bar", 7), ("foo[bar baz]", 8), ("foo[]x", 5), ("foo>=1.0;", 9),
        ("foo; bogus == '1'", 5), ("foo; os_name == 'a", 16), ("foo @ ", 6), ("foo @ notaurl", 6), ("foo (>=1.0", 10),
        ("foo\n==1", 3), ("foo bar", 4), ("foo; (os_name == 'a'", 20), ("foo; os_name ==", 15), ("foo ==1.0 )", 10),
    ])
    func malformed(example: (String, Int)) {
        do {
            let parsed = try PythonRequirement.parse(example.0)
            Issue.record("\(example.0) parsed as \(parsed.canonical)")
        } catch {
            #expect(error.position == example.1, "\(example.0): \(error)")
            #expect(!error.message.isEmpty)
        }
    }
}

@Suite("Direct conflicts")
struct ConflictTests {
    func conflicts(_ texts: [String], _ ecosystem: Ecosystem = .python) throws -> [DirectConflict] {
        ConflictDetector.conflicts(try texts.map { try ParsedRequirement.parse($0, ecosystem: ecosystem) })
    }

    @Test("compatible ranges are not conflicts", arguments: [
        ["numpy>=1.20", "numpy<2"], ["numpy==1.21", "numpy>=1.20"], ["a==1.*", "a>=1.5"], ["a~=1.4", "a<1.9"], ["a!=1.5", "a>=1.5"],
        ["a==1.0", "A==1.0.0"], ["a>=1.0a1", "a<1.0a2"], ["a==1.0+local", "a==1.0"], ["a>1.0", "a<=1.0.1"], ["a", "a==3"],
        ["a[x]>=1", "a<2"], ["a===foo", "a===foo"], ["a<2; python_version<'3'", "a>=3"], ["a==1.0", "b==2.0"],
    ])
    func compatible(texts: [String]) throws {
        #expect(try conflicts(texts).isEmpty, "\(texts)")
    }

    @Test("incompatible ranges are conflicts naming both requirements", arguments: [
        ["NumPy==1.21", "numpy==1.24"], ["a>=2", "a<2"], ["a==1.*", "a==2.*"], ["a~=1.4", "a>=2"], ["a==1.5", "a!=1.5"],
        ["a<2", "a>=2.0rc1"], ["a>=1.0a1", "a<1.0"], ["a>1.0", "a<1.0.post5"], ["a!=1.*", "a==1.2"], ["a==1!1.0", "a==1.0"], ["a>=3", "b", "a<=2.9"],
        ["a===foo", "a===bar"], ["a_b==1", "A.B==2"],
    ])
    func incompatible(texts: [String]) throws {
        let found = try conflicts(texts)
        #expect(found.count == 1, "\(texts)")
        #expect(found.first?.requirements.count == 2, "\(found)")
        for text in found.first?.requirements ?? [] { #expect(texts.contains(text)) }
    }

    @Test("a three-way conflict where every pair is fine names all three")
    func threeWay() throws {
        // Each pair intersects, all three do not: [1,3) & [2,4) & ... needs disjoint unions.
        let found = try conflicts(["a==1.*,!=1.5", "a==1.5.*,!=1.5.1", "a==1.5.1"])
        #expect(found.count == 1)
    }

    @Test("the reference system's failures: both directions")
    func reference() throws {
        #expect(try conflicts(["numpy>=1.20", "numpy<2"]).isEmpty)
        let conflict = try #require(try conflicts(["NumPy==1.21", "numpy==1.24"]).first)
        #expect(conflict.package == "numpy")
        #expect(conflict.requirements == ["NumPy==1.21", "numpy==1.24"])
    }

    @Test("50 packages with compatible ranges have no conflict (timed by `atom bench install`: resolve_direct_50)")
    func fifty() throws {
        var texts: [String] = []
        for index in 0..<50 { texts.append("package-\(index)>=1.\(index),<3"); texts.append("Package_\(index)!=2.0") }
        let parsed = try texts.map { try ParsedRequirement.parse($0, ecosystem: .python) }
        #expect(ConflictDetector.conflicts(parsed).isEmpty)
    }
}
