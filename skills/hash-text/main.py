import hashlib

def execute(inputs):
    data = inputs["text"].encode(inputs.get("encoding", "utf-8"))
    algorithms = inputs.get("algorithms", ["sha256"])
    result = {}
    for name in algorithms:
        if name not in hashlib.algorithms_guaranteed:
            raise ValueError(f"unknown algorithm {name}; use one of {sorted(hashlib.algorithms_guaranteed)}")
        result[name] = hashlib.new(name, data).hexdigest()
    return {"hashes": result, "bytes": len(data)}
