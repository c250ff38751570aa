import collections
import re

def execute(inputs):
    text = inputs["text"].strip()
    count = int(inputs.get("sentences", 2))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    words = [w.lower() for w in re.findall(r"[a-zA-Z']+", text) if len(w) > 3]
    frequency = collections.Counter(words)
    def score(sentence):
        tokens = [w.lower() for w in re.findall(r"[a-zA-Z']+", sentence) if len(w) > 3]
        return sum(frequency[t] for t in tokens) / (len(tokens) or 1)
    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))[:count]
    chosen = [sentences[i] for i in sorted(ranked)]
    return {"summary": " ".join(chosen), "sentences": len(chosen), "original_sentences": len(sentences)}
