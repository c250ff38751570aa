import csv
import io

def _number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text

def execute(inputs):
    reader = csv.DictReader(io.StringIO(inputs["csv"]), delimiter=inputs.get("delimiter", ","))
    convert = bool(inputs.get("convert_numbers", True))
    records = []
    for row in reader:
        records.append({key: (_number(value) if convert and value is not None else value) for key, value in row.items()})
    return {"records": records, "count": len(records), "columns": reader.fieldnames or []}
