from datetime import datetime, timedelta

def execute(inputs):
    start = datetime.fromisoformat(inputs["start"])
    end = datetime.fromisoformat(inputs["end"])
    delta = end - start
    business = 0
    day = start.date()
    step = timedelta(days=1 if end >= start else -1)
    while day != end.date():
        if day.weekday() < 5:
            business += 1
        day += step
    return {
        "days": delta.days,
        "seconds": int(delta.total_seconds()),
        "hours": round(delta.total_seconds() / 3600, 4),
        "weeks": round(delta.days / 7, 4),
        "business_days": business if end >= start else -business,
    }
