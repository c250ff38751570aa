import collections
import re

STOP = {"the", "a", "an", "and", "or", "of", "to", "in", "is", "it", "on", "for", "with", "as", "at", "by"}

def execute(inputs):
    words = [w.lower() for w in re.findall(r"[\w']+", inputs["text"])]
    if inputs.get("skip_stop_words", True):
        words = [w for w in words if w not in STOP]
    top = int(inputs.get("top", 10))
    counts = collections.Counter(words)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    return {"words": [{"word": w, "count": c} for w, c in ranked], "total": len(words)}
