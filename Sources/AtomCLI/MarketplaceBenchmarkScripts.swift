/// The Python halves of `atom bench marketplace`: the data set and the baselines. They are
/// written next to the data when the benchmark runs.
enum MarketplaceBenchmarkScripts {
    /// Builds `count` skills as JSON Lines from Debian's package descriptions (`apt-cache
    /// dumpavail`: about 63,000 real descriptions on bookworm), topped up with variations (a
    /// package's summary with another package's long description under a derived name), and
    /// picks the query words of each shape from the data's document frequencies. Writes
    /// `OUT.jsonl` and `OUT.queries.json`. Deterministic (fixed seed).
    static let dataset = #"""
        import collections, json, random, re, subprocess, sys

        out, count = sys.argv[1], int(sys.argv[2])
        random.seed(20261129)
        dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True)
        if dump.returncode != 0 or "Package:" not in dump.stdout:
            sys.exit("apt-cache dumpavail gave no packages (run `apt-get update`): " + dump.stderr[-500:])

        def token(text):
            text = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
            return text[:64] or "misc"

        packages = []
        for stanza in dump.stdout.split("\n\n"):
            fields, key = {}, None
            for line in stanza.split("\n"):
                if line.startswith(" ") and key:
                    fields[key] += "\n" + line[1:]
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            if "Package" not in fields or "Description" not in fields:
                continue
            short, _, long = fields["Description"].partition("\n")
            long = " ".join(l.strip() for l in long.split("\n") if l.strip() not in (".", ""))
            packages.append({
                "package": fields["Package"], "short": short.strip(), "long": long,
                "section": fields.get("Section", "misc").split("/")[-1],
                "maintainer": fields.get("Maintainer", "").split("<")[0].strip().replace('"', ""),
                "version": fields.get("Version", "1.0.0"),
            })
        random.shuffle(packages)

        def semver(debian):
            parts = re.findall(r"\d+", debian.split(":")[-1])[:3]
            parts = [str(int(p) % 100000) for p in parts] + ["0"] * (3 - len(parts))
            return ".".join(parts[:3])

        def name_of(package):
            name = re.sub(r"[^a-z0-9_-]+", "-", package.lower()).strip("-_")
            if not name or not name[0].isalpha():
                name = "p-" + name
            return name[:64].rstrip("-_")

        suffixes = ["extras", "tools", "plugin", "contrib", "utils", "lite", "cli", "kit", "addons", "server", "client", "core"]
        seen, lines, documents = set(), [], []
        def add(name, description, p):
            if name in seen or len(lines) >= count:
                return
            seen.add(name)
            words = [w for w in re.findall(r"[a-z]{4,}", p["short"].lower())]
            tags = list(dict.fromkeys([token(p["section"])] + words[:2]))
            runtime = "python" if name.startswith("python") else "node" if name.startswith("node") else random.choice(["python"] * 4 + ["node"])
            skill = {
                "name": name, "version": semver(p["version"]), "description": description[:4000],
                "category": token(p["section"]), "runtime": runtime, "tags": tags, "author": p["maintainer"][:200],
                "downloads": int(random.paretovariate(1.2) * 10),
            }
            lines.append(json.dumps(skill, ensure_ascii=False))
            documents.append((skill["category"], " ".join([name.replace("-", " "), " ".join(tags), skill["category"], description]).lower()))

        for p in packages:
            add(name_of(p["package"]), (p["short"] + ". " + p["long"]).strip(), p)
        round_ = 0
        while len(lines) < count:
            for p in packages:
                other = random.choice(packages)
                add(name_of(p["package"] + "-" + suffixes[(round_ + len(lines)) % len(suffixes)]) + ("" if round_ == 0 else str(round_)),
                    (p["short"] + ". " + other["long"]).strip(), p)
            round_ += 1

        df = collections.Counter()
        categories = collections.Counter()
        for category, text in documents:
            categories[category] += 1
            df.update(set(re.findall(r"[a-z0-9]+", text)))
        n = len(documents)
        common = min((w for w, c in df.items() if c >= 0.34 * n and w.isalpha()), key=lambda w: abs(df[w] - 0.4 * n))
        rare = sorted(w for w, c in df.items() if c == 3 and w.isalpha() and len(w) >= 7)
        rare = rare[len(rare) // 2]
        multi = [w for w in ["python", "library", "parser"] if df[w] > 0]
        prefix = "summar" if any(w.startswith("summar") for w in df) else "config"
        category = categories.most_common(1)[0][0]
        queries = {
            "rare": {"query": rare, "df": df[rare]},
            "common": {"query": common, "df": df[common]},
            "multi": {"query": " ".join(multi), "df": [df[w] for w in multi]},
            "prefix": {"query": prefix, "df": sum(c for w, c in df.items() if w.startswith(prefix))},
            "filtered": {"query": common, "category": category, "df": df[common], "category_size": categories[category]},
        }
        with open(out + ".jsonl", "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(out + ".queries.json", "w") as f:
            json.dump({"count": n, "queries": queries}, f, indent=2)
        print(json.dumps({"count": n, "queries": queries}))
        """#

    /// Times the same queries, top 20 by BM25, directly against SQLite FTS5 (the `sqlite3`
    /// module, in process) and tantivy (when importable), each query `rounds` times after a
    /// warm-up. Prints JSON: per engine, per shape, the latencies in nanoseconds, or why the
    /// engine is unavailable.
    static let baselines = #"""
        import json, sqlite3, sys, time

        data, queries_file, rounds, engine = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
        queries = json.load(open(queries_file))["queries"]
        docs = [json.loads(line) for line in open(data) if line.strip()]
        result = {}

        def timed(run, shape):
            for _ in range(min(200, rounds)):
                run()
            samples = []
            for _ in range(rounds):
                start = time.perf_counter_ns()
                run()
                samples.append(time.perf_counter_ns() - start)
            return samples

        if engine == "fts5":
            db = sqlite3.connect(":memory:")
            db.execute("CREATE VIRTUAL TABLE skills USING fts5(name, tags, description, category UNINDEXED)")
            db.executemany("INSERT INTO skills(name, tags, description, category) VALUES (?, ?, ?, ?)",
                           ((d["name"].replace("-", " "), " ".join(d["tags"] + [d["category"]]), d["description"], d["category"]) for d in docs))
            # The weights as the table's rank function: ORDER BY rank is FTS5's optimised path.
            db.execute("INSERT INTO skills(skills, rank) VALUES ('rank', 'bm25(4.0, 2.0, 1.0)')")
            db.commit()
            def fts(text, prefix=False):
                words = [w for w in text.split() if w]
                quoted = ['"' + w.replace('"', '""') + '"' for w in words]
                if prefix:
                    quoted[-1] = quoted[-1] + " *"
                return " OR ".join(quoted)
            for shape, q in queries.items():
                match = fts(q["query"], prefix=shape == "prefix")
                if shape == "filtered":
                    sql = "SELECT rowid FROM skills WHERE skills MATCH ? AND category = ? ORDER BY rank LIMIT 20"
                    args = (match, q["category"])
                else:
                    sql = "SELECT rowid FROM skills WHERE skills MATCH ? ORDER BY rank LIMIT 20"
                    args = (match,)
                result[shape] = timed(lambda: db.execute(sql, args).fetchall(), shape)
        else:
            try:
                import tantivy
            except Exception as error:
                print(json.dumps({"unavailable": f"cannot import tantivy: {error}"}))
                sys.exit(0)
            builder = tantivy.SchemaBuilder()
            builder.add_text_field("name", stored=False)
            builder.add_text_field("tags", stored=False)
            builder.add_text_field("description", stored=False)
            builder.add_text_field("category", stored=False, tokenizer_name="raw")
            schema = builder.build()
            index = tantivy.Index(schema)
            writer = index.writer(heap_size=200_000_000, num_threads=1)
            for d in docs:
                writer.add_document(tantivy.Document(name=d["name"].replace("-", " "), tags=" ".join(d["tags"] + [d["category"]]),
                                                     description=d["description"], category=d["category"]))
            writer.commit()
            writer.wait_merging_threads()
            index.reload()
            searcher = index.searcher()
            fields = ["name", "tags", "description"]
            boosts = {"name": 4.0, "tags": 2.0}
            for shape, q in queries.items():
                try:
                    if shape == "prefix":
                        query = tantivy.Query.boolean_query([
                            (tantivy.Occur.Should, tantivy.Query.phrase_prefix_query(schema, f, [q["query"]])) for f in fields])
                    else:
                        query = index.parse_query(q["query"], fields, field_boosts=boosts)
                    if shape == "filtered":
                        query = tantivy.Query.boolean_query([
                            (tantivy.Occur.Must, query), (tantivy.Occur.Must, tantivy.Query.term_query(schema, "category", q["category"]))])
                    # count=True: the exact total, as the marketplace returns.
                    result[shape] = timed(lambda: searcher.search(query, 20, count=True), shape)
                except Exception as error:
                    result[shape] = {"unavailable": f"{type(error).__name__}: {error}"}
        print(json.dumps(result))
        """#
}
