import re

LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")

def execute(inputs):
    address = inputs["email"].strip()
    if address.count("@") != 1:
        return {"valid": False, "reason": "an address has exactly one @"}
    local, domain = address.split("@")
    if not local or len(local) > 64 or not LOCAL.match(local):
        return {"valid": False, "reason": "the local part is invalid"}
    labels = domain.split(".")
    if len(labels) < 2 or not all(LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return {"valid": False, "reason": "the domain is invalid"}
    return {"valid": True, "local": local, "domain": domain.lower()}
