import json

def execute(inputs):
    document = inputs["document"]
    if isinstance(document, str):
        document = json.loads(document)
    value = document
    path = inputs.get("path", "")
    for part in [p for p in path.split(".") if p != ""]:
        if isinstance(value, list):
            index = int(part)
            if index < -len(value) or index >= len(value):
                return {"found": False, "path": path}
            value = value[index]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return {"found": False, "path": path}
    return {"found": True, "path": path, "value": value}
