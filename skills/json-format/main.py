import json

def execute(inputs):
    text = inputs["text"]
    try:
        value = json.loads(text)
    except ValueError as error:
        return {"valid": False, "error": str(error)}
    indent = inputs.get("indent", 2)
    sort_keys = bool(inputs.get("sort_keys", False))
    if inputs.get("minify", False):
        formatted = json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
    else:
        formatted = json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False)
    return {"valid": True, "formatted": formatted}
