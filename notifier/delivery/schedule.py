"""When a matched event is due to go out: at once (after the batching window), at the daily hour, or weekly.

Pure. Times are computed in the subscriber's zone, so a 07:00 digest stays at 07:00 local across DST changes.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from notifier.models import Frequency


def _local_at(day: datetime, hour: int, tz: ZoneInfo) -> datetime:
    """`hour`:00 local on `day`'s date; a wall time that DST skips resolves forward, per zoneinfo's fold rules."""
    local = datetime.combine(day.date(), time(hour), tzinfo=tz)
    # round-trip through UTC normalises a non-existent local time (spring forward) to a real instant
    return local.astimezone(UTC).astimezone(tz)


def next_send_time(
    frequency: Frequency | str, *, after: datetime, timezone: str, hour: int, weekday: int, batch_seconds: int
) -> datetime:
    """The first moment at or after `after` when a delivery of this frequency should be sent (UTC).

    Daily: the next `hour`:00 in `timezone`; weekly: the next `hour`:00 on `weekday` (0 = Monday). An hour that a
    DST change skips is the first moment after the gap; an hour that it repeats counts once, the first time.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("`after` must be a timezone-aware datetime")
    if not (0 <= hour <= 23 and 0 <= weekday <= 6):
        raise ValueError(f"hour must be 0-23 and weekday 0-6, got {hour} and {weekday}")
    freq = Frequency(frequency)
    if freq is Frequency.IMMEDIATE:
        return (after + timedelta(seconds=batch_seconds)).astimezone(UTC)
    tz = ZoneInfo(timezone)
    local_now = after.astimezone(tz)
    for days in range(0, 8 if freq is Frequency.WEEKLY else 2):
        candidate = _local_at(local_now + timedelta(days=days), hour, tz)
        # compared as instants: two datetimes in the same zone compare by wall clock, which in the repeated hour
        # of an autumn change would put the first 01:00 after the second 01:30
        if candidate.astimezone(UTC) < after:
            continue
        if freq is Frequency.WEEKLY and candidate.weekday() != weekday:
            continue
        return candidate.astimezone(UTC)
    raise AssertionError("unreachable: a matching day exists within a week")  # pragma: no cover
