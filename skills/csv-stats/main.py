import csv
import io
import statistics

def execute(inputs):
    rows = list(csv.DictReader(io.StringIO(inputs["csv"])))
    columns = {}
    names = list(rows[0].keys()) if rows else []
    for name in names:
        values = [row[name] for row in rows if row.get(name) not in (None, "")]
        numbers = []
        for value in values:
            try:
                numbers.append(float(value))
            except ValueError:
                numbers = None
                break
        if numbers:
            columns[name] = {"type": "number", "count": len(numbers), "sum": sum(numbers), "mean": statistics.fmean(numbers),
                             "min": min(numbers), "max": max(numbers)}
        else:
            columns[name] = {"type": "text", "count": len(values), "distinct": len(set(values))}
    return {"rows": len(rows), "columns": columns}
