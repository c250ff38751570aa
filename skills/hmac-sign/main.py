import hashlib
import hmac

def execute(inputs):
    key = inputs["key"].encode()
    message = inputs["message"].encode()
    signature = hmac.new(key, message, hashlib.sha256).hexdigest()
    result = {"signature": signature}
    if "signature" in inputs:
        result["valid"] = hmac.compare_digest(signature, inputs["signature"])
    return result
