import json
import urllib.request

def execute(inputs):
    url = inputs["url"]
    timeout = float(inputs.get("timeout_seconds", 10))
    limit = int(inputs.get("max_bytes", 1_000_000))
    request = urllib.request.Request(url, headers={"User-Agent": "atom-skills-http-fetch/1.0"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(limit + 1)
        status = getattr(response, "status", None) or 200
        content_type = response.headers.get("Content-Type", "") or ""
    truncated = len(body) > limit
    text = body[:limit].decode("utf-8", errors="replace")
    result = {"status": status, "content_type": content_type, "text": text, "bytes": min(len(body), limit), "truncated": truncated}
    if "json" in content_type:
        try:
            result["json"] = json.loads(text)
        except ValueError:
            pass
    return result
