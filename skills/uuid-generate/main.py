import uuid

NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL, "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}

def execute(inputs):
    if "name" in inputs:
        value = uuid.uuid5(NAMESPACES[inputs.get("namespace", "dns")], inputs["name"])
    else:
        value = uuid.uuid4()
    return {"uuid": str(value), "version": value.version}
