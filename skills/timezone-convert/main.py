from datetime import datetime
from zoneinfo import ZoneInfo

def execute(inputs):
    source = ZoneInfo(inputs.get("from_zone", "UTC"))
    target = ZoneInfo(inputs["to_zone"])
    moment = datetime.fromisoformat(inputs["datetime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=source)
    converted = moment.astimezone(target)
    return {"datetime": converted.isoformat(), "offset": converted.strftime("%z"), "zone": str(target)}
