import ipaddress

def execute(inputs):
    text = inputs["address"]
    if "/" in text:
        network = ipaddress.ip_network(text, strict=False)
        return {"version": network.version, "network": str(network), "addresses": network.num_addresses,
                "first": str(network[0]), "last": str(network[-1]), "private": network.is_private}
    address = ipaddress.ip_address(text)
    return {"version": address.version, "private": address.is_private, "loopback": address.is_loopback,
            "global": address.is_global, "reverse_pointer": address.reverse_pointer}
