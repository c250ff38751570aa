internal import Foundation

/// What may be installed: a deny list, an optional allow list, typosquat detection against
/// popular names, wheels-only mode and an optional vulnerability scanner (which fails closed).
public struct SupplyChainPolicy: Sendable {
    public enum TyposquatMode: String, Sendable {
        case warn, refuse, off
    }

    public var deny: Set<String>
    /// nil: every name not denied is allowed.
    public var allow: Set<String>?
    public var typosquat: TyposquatMode
    public var wheelsOnly: Bool
    public var scanner: String?

    public init(deny: Set<String> = [], allow: Set<String>? = nil, typosquat: TyposquatMode = .warn, wheelsOnly: Bool = false, scanner: String? = nil) {
        self.deny = deny
        self.allow = allow
        self.typosquat = typosquat
        self.wheelsOnly = wheelsOnly
        self.scanner = scanner
    }

    /// The verdict on a request's direct requirements.
    public struct Decision: Sendable {
        public var refusals: [String] = []
        public var warnings: [String] = []
        public var allowed: Bool { refusals.isEmpty }
    }

    /// Checks the direct requirements (names normalised) of one request.
    public func evaluate(_ requirements: [ParsedRequirement], ecosystem: Ecosystem) -> Decision {
        var decision = Decision()
        for requirement in requirements {
            let name = requirement.normalizedName
            let key = ecosystem == .python ? name : PythonRequirement.normalize(name)
            if deny.contains(key) {
                decision.refusals.append("\(requirement.text): \(name) is on the deny list")
                continue
            }
            if let allow, !allow.contains(key) {
                decision.refusals.append("\(requirement.text): \(name) is not on the allow list")
                continue
            }
            if typosquat != .off, let popular = PopularPackages.closeMatch(for: name, ecosystem: ecosystem) {
                let message = "\(requirement.text): \(name) is very close to the popular package \(popular): possible typosquat"
                if typosquat == .refuse { decision.refusals.append(message) } else { decision.warnings.append(message) }
            }
        }
        return decision
    }
}

/// Popular package names shipped with the installer, for typosquat detection.
public enum PopularPackages {
    public static let python: Set<String> = [
        "requests", "numpy", "pandas", "scipy", "matplotlib", "urllib3", "setuptools", "boto3", "botocore",
        "certifi", "idna", "charset-normalizer", "six", "python-dateutil", "pyyaml", "typing-extensions",
        "packaging", "wheel", "pip", "cryptography", "jinja2", "markupsafe", "click", "attrs", "pytz",
        "pydantic", "protobuf", "grpcio", "flask", "django", "fastapi", "uvicorn", "starlette", "sqlalchemy",
        "psycopg2", "psycopg2-binary", "pymysql", "redis", "celery", "scikit-learn", "torch", "tensorflow",
        "keras", "transformers", "tokenizers", "pillow", "opencv-python", "beautifulsoup4", "lxml", "httpx",
        "aiohttp", "websockets", "pytest", "coverage", "tqdm", "rich", "colorama", "jsonschema", "pyjwt",
        "paramiko", "docker", "openai", "anthropic", "langchain", "selenium", "pyarrow", "sympy", "networkx",
        "seaborn", "plotly", "statsmodels", "xgboost", "lightgbm", "nltk", "spacy", "gunicorn", "werkzeug",
        "itsdangerous", "simplejson", "ujson", "orjson", "toml", "tomli", "filelock", "platformdirs",
        "virtualenv", "pyparsing", "wrapt", "decorator", "multidict", "yarl", "frozenlist", "aiosignal",
        "async-timeout", "greenlet", "gevent", "pexpect", "psutil", "pygments", "docutils", "sphinx",
        "mypy", "black", "flake8", "pylint", "isort", "ruff", "boto", "s3transfer", "jmespath", "google-auth",
        "googleapis-common-protos", "rsa", "pyasn1", "oauthlib", "requests-oauthlib", "cachetools", "dill",
        "cloudpickle", "joblib", "threadpoolctl", "regex", "chardet", "markdown", "bleach", "arrow", "pendulum",
    ]

    public static let npm: Set<String> = [
        "lodash", "react", "react-dom", "express", "axios", "chalk", "commander", "debug", "moment", "uuid",
        "vue", "typescript", "webpack", "babel-core", "eslint", "prettier", "jest", "mocha", "request",
        "async", "underscore", "bluebird", "yargs", "minimist", "glob", "rimraf", "mkdirp", "fs-extra",
        "body-parser", "cors", "dotenv", "jsonwebtoken", "mongoose", "mysql", "pg", "redis", "socket.io",
        "ws", "node-fetch", "cross-env", "semver", "rxjs", "dayjs", "classnames", "prop-types", "next",
        "jquery", "colors", "inquirer", "ora", "tslib", "zod", "left-pad", "esbuild", "vite", "rollup",
    ]

    /// The popular name `name` is one or two edits away from (and not equal to), if any.
    public static func closeMatch(for name: String, ecosystem: Ecosystem) -> String? {
        let names = ecosystem == .python ? python : npm
        let candidate = ecosystem == .python ? PythonRequirement.normalize(name) : name
        guard !names.contains(candidate), candidate.count >= 4 else { return nil }
        // Short names are one edit apart from many real packages: allow 1 edit below 8
        // characters, 2 from there on.
        let limit = candidate.count >= 8 ? 2 : 1
        var best: (String, Int)?
        for popular in names where abs(popular.count - candidate.count) <= limit {
            let distance = editDistance(candidate, popular, limit: limit)
            if distance <= limit, best == nil || distance < best!.1 || (distance == best!.1 && popular < best!.0) {
                best = (popular, distance)
            }
        }
        return best?.0
    }

    /// Damerau-Levenshtein distance (optimal string alignment); stops early past `limit`.
    public static func editDistance(_ a: String, _ b: String, limit: Int = .max) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous2 = [Int](repeating: 0, count: y.count + 1)
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            var rowMinimum = current[0]
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
                rowMinimum = min(rowMinimum, value)
            }
            if rowMinimum > limit { return rowMinimum }
            previous2 = previous
            previous = current
        }
        return previous[y.count]
    }
}

/// Resource limits stored with a skill's environment binding, for the loader to apply.
public struct ResourceLimits: Sendable, Hashable, Codable {
    /// 0: no limit.
    public var memoryBytes: UInt64
    /// 0: no limit.
    public var cpus: Double

    public init(memoryBytes: UInt64 = 0, cpus: Double = 0) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
    }

    /// Parses `512m`, `1g`, `1.5G`, `256Mi`, `1024k`, `4096` (bytes). Empty means no limit.
    public static func parseMemory(_ text: String) -> Result<UInt64, SpecifierProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed.isEmpty { return .success(0) }
        let numberPart = trimmed.prefix { $0.isNumber || $0 == "." }
        var unit = String(trimmed.dropFirst(numberPart.count))
        guard !numberPart.isEmpty, let value = Double(numberPart), value.isFinite else {
            return .failure(SpecifierProblem(offset: 0, message: "expected a number like 512m or 1g"))
        }
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("i") || (unit.count == 2 && unit.hasSuffix("b")) { unit.removeLast() }
        let multipliers: [String: Double] = ["": 1, "b": 1, "k": 1_024, "m": 1_048_576, "g": 1_073_741_824, "t": 1_099_511_627_776]
        guard let multiplier = multipliers[unit] else {
            return .failure(SpecifierProblem(offset: numberPart.count, message: "unknown unit '\(trimmed.dropFirst(numberPart.count))'; use k, m, g or t"))
        }
        let bytes = value * multiplier
        guard bytes >= 1_048_576 else { return .failure(SpecifierProblem(offset: 0, message: "a memory limit below 1 MiB is not useful")) }
        guard bytes <= 1_125_899_906_842_624 else { return .failure(SpecifierProblem(offset: 0, message: "a memory limit above 1 PiB is not plausible")) }
        return .success(UInt64(bytes))
    }

    /// Parses `0.5`, `1`, `2.0` CPUs. Empty means no limit.
    public static func parseCPU(_ text: String) -> Result<Double, SpecifierProblem> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return .success(0) }
        guard trimmed.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(trimmed), value.isFinite else {
            return .failure(SpecifierProblem(offset: 0, message: "expected a number of CPUs like 0.5 or 2"))
        }
        guard value >= 0.01 && value <= 1024 else { return .failure(SpecifierProblem(offset: 0, message: "CPUs must be between 0.01 and 1024")) }
        return .success(value)
    }
}
