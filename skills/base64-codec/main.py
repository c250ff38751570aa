import base64

def execute(inputs):
    mode = inputs.get("mode", "encode")
    url_safe = bool(inputs.get("url_safe", False))
    if mode == "encode":
        data = inputs["text"].encode()
        encoded = base64.urlsafe_b64encode(data) if url_safe else base64.b64encode(data)
        return {"result": encoded.decode("ascii")}
    if mode == "decode":
        text = inputs["text"]
        text += "=" * (-len(text) % 4)
        decoded = base64.urlsafe_b64decode(text) if url_safe else base64.b64decode(text, validate=True)
        return {"result": decoded.decode("utf-8", errors="replace")}
    raise ValueError(f"mode {mode} is unknown; use encode or decode")
