from urllib.parse import parse_qs, urlsplit

def execute(inputs):
    parts = urlsplit(inputs["url"])
    query = {key: values if len(values) > 1 else values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
    return {
        "scheme": parts.scheme,
        "host": parts.hostname or "",
        "port": parts.port or {"http": 80, "https": 443}.get(parts.scheme),
        "path": parts.path,
        "query": query,
        "fragment": parts.fragment,
        "username": parts.username or "",
    }
