import re
import unicodedata

def execute(inputs):
    text = unicodedata.normalize("NFKD", inputs["text"]).encode("ascii", "ignore").decode("ascii")
    separator = inputs.get("separator", "-")
    slug = separator.join(re.findall(r"[a-z0-9]+", text.lower()))
    limit = int(inputs.get("max_length", 80))
    if len(slug) > limit:
        slug = slug[:limit].rstrip(separator)
    return {"slug": slug}
