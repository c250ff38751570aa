import re

def execute(inputs):
    text = inputs["text"]
    words = re.findall(r"[\w']+", text)
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    return {
        "characters": len(text),
        "words": len(words),
        "lines": len(text.splitlines()) if text else 0,
        "sentences": len(sentences),
        "unique_words": len({w.lower() for w in words}),
        "average_word_length": round(sum(len(w) for w in words) / len(words), 2) if words else 0,
    }
