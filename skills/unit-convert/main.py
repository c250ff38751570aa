LENGTH = {"m": 1.0, "km": 1000.0, "cm": 0.01, "mm": 0.001, "mi": 1609.344, "ft": 0.3048, "in": 0.0254, "yd": 0.9144}
MASS = {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125}
TEMPERATURE = {"c", "f", "k"}

def _temperature(value, source, target):
    kelvin = {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[source]
    return {"c": kelvin - 273.15, "f": (kelvin - 273.15) * 9 / 5 + 32, "k": kelvin}[target]

def execute(inputs):
    value = float(inputs["value"])
    source = inputs["from"].lower()
    target = inputs["to"].lower()
    for table in (LENGTH, MASS):
        if source in table and target in table:
            return {"value": round(value * table[source] / table[target], 6), "unit": target}
    if source in TEMPERATURE and target in TEMPERATURE:
        return {"value": round(_temperature(value, source, target), 6), "unit": target}
    raise ValueError(f"cannot convert {source} to {target}")
