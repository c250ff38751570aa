from datetime import datetime, timedelta

def execute(inputs):
    moment = datetime.fromisoformat(inputs["date"]) + timedelta(days=int(inputs.get("add_days", 0)))
    pattern = inputs.get("format", "%Y-%m-%d")
    year, week, _ = moment.isocalendar()
    return {
        "formatted": moment.strftime(pattern),
        "iso": moment.isoformat(),
        "weekday": moment.strftime("%A"),
        "iso_week": week,
        "iso_year": year,
        "day_of_year": moment.timetuple().tm_yday,
    }
