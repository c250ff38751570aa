import re

def execute(inputs):
    flags = re.IGNORECASE if inputs.get("ignore_case", False) else 0
    pattern = re.compile(inputs["pattern"], flags)
    limit = int(inputs.get("limit", 1000))
    matches = []
    for match in pattern.finditer(inputs["text"]):
        matches.append({"match": match.group(0), "start": match.start(), "groups": list(match.groups()), "named": match.groupdict()})
        if len(matches) >= limit:
            break
    return {"matches": matches, "count": len(matches)}
