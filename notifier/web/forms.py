"""The alert form the pages share (subscribe, add and edit an alert): reading it, its choices, its errors.

Errors are keyed by the id of the field they belong to, so a page can summarise them at the top, link each to its
field and show it beside the field, as the GOV.UK Design System does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import asyncpg
from multidict import MultiMapping

from notifier import subscriptions as subs
from notifier.models import FilterModel, Frequency

FREQUENCIES = [
    ("immediate", "As it happens", "One email a few minutes after each update"),
    ("daily", "Daily digest", "One email a day at the hour you choose"),
    ("weekly", "Weekly summary", "One email a week on the day you choose"),
]
FREQUENCY_LABELS = {value: label for value, label, _ in FREQUENCIES}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MAX_QUERY = 1000
MAX_COMMITTEE = 200  # FilterModel's bound on an entry


@cache
def time_zones() -> list[str]:
    """IANA zones people live in (not the legacy aliases), for the time zone choice."""
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/")))


@dataclass
class AlertForm:
    """What the form said, as typed (to show again), and what it means once valid."""

    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    filter: FilterModel = field(default_factory=FilterModel)
    frequency: Frequency = Frequency.WEEKLY
    hour: int | None = None
    weekday: int | None = None
    timezone: str = "Europe/London"


def _int_in(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def read_values(form: MultiMapping[Any], default_timezone: str) -> dict[str, Any]:
    def one(name: str) -> str:
        return str(form.get(name, "")).strip()

    return {
        "email": one("email"),
        "query": one("query")[:MAX_QUERY],
        "scope": one("scope") or "choose",
        "councils": [str(v) for v in form.getall("council", [])][:300],
        "regions": [str(v) for v in form.getall("region", [])][:50],
        # a committee comes from a meeting page's "Follow this committee" link and stays a choice on the form
        "committees": [c for c in (str(v).strip() for v in form.getall("committee", [])) if c][:20],
        "frequency": one("frequency") or "weekly",
        "hour": one("hour") or "7",
        "weekday": one("weekday") or "0",
        "timezone": one("timezone") or default_timezone,
    }


async def read_alert(conn: asyncpg.Pool | asyncpg.Connection, values: dict[str, Any]) -> AlertForm:
    """Check the alert part of the form (everything but the address) against the language and the registry."""
    result = AlertForm(values)
    errors = result.errors
    every = values["scope"] == "all"
    councils = [] if every else [c for c in values["councils"] if c]
    regions = [] if every else [r for r in values["regions"] if r]
    committees = [c for c in values["committees"] if len(c) <= MAX_COMMITTEE]
    if not every and not councils and not regions and not values["query"]:
        errors["councils"] = "Choose at least one council or region, choose every council, or enter a topic"
    try:
        result.filter = await subs.validate_filter(
            conn, FilterModel(query=values["query"], councils=councils, regions=regions, committees=committees)
        )
    except subs.FilterError as e:
        if e.field == "query":
            errors["query"] = f"Enter a topic we can follow: {e}"
        else:
            errors["councils"] = f"Choose councils from the list ({e})"
    try:
        result.frequency = Frequency(values["frequency"])
    except ValueError:
        errors["frequency-immediate"] = "Choose how often you want emails"
    if result.frequency == Frequency.DAILY:
        result.hour = _int_in(values["hour"], 0, 23)
        if result.hour is None:
            errors["hour"] = "Choose an hour of the day between 00:00 and 23:00"
    if result.frequency == Frequency.WEEKLY:
        result.weekday = _int_in(values["weekday"], 0, 6)
        if result.weekday is None:
            errors["weekday"] = "Choose a day of the week"
    try:
        result.timezone = subs.check_timezone(values["timezone"], "Europe/London")
    except subs.FilterError:
        errors["timezone"] = "Choose a time zone from the list"
    return result


def values_of(row: Any, timezone: str) -> dict[str, Any]:
    """A stored subscription as the form's values, to edit it."""
    return {
        "query": row["query"],
        "scope": "all" if not row["councils"] and not row["regions"] else "choose",
        "councils": list(row["councils"]),
        "regions": list(row["regions"]),
        "committees": list(row["committees"]),
        "frequency": row["frequency"],
        "hour": str(row["hour"] if row["hour"] is not None else 7),
        "weekday": str(row["weekday"] if row["weekday"] is not None else 0),
        "timezone": timezone,
    }


def schedule_in_words(
    frequency: str, hour: int | None, weekday: int | None, timezone: str, *, default_hour: int, default_weekday: int
) -> str:
    """When the emails go out, as the matcher schedules them (matching/matcher.py `_due`): at the alert's own hour,
    or the configured digest hour (NOTIFIER_DIGEST_HOUR) when it has none, as weekly alerts made here do not; on
    its own day, or the configured weekly day."""
    at = f"{hour if hour is not None else default_hour:02d}:00 ({timezone})"
    if frequency == "daily":
        return f"Every day at {at}"
    if frequency == "weekly":
        return f"Every {WEEKDAYS[weekday if weekday is not None else default_weekday]} at {at}"
    return "As it happens, a few minutes after each update"


async def choices(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, Any]:
    """The councils grouped by nation and region, for the form's choice of councils."""
    rows = await conn.fetch("select slug, name, region from councils order by region nulls last, name")
    groups: dict[str | None, list[Any]] = {}
    for r in rows:
        groups.setdefault(r["region"], []).append(r)
    council_groups = [
        {"region": region, "name": region or "Other councils", "councils": members}
        for region, members in groups.items()
    ]
    return {
        "council_groups": council_groups,
        "frequencies": FREQUENCIES,
        "weekdays": WEEKDAYS,
        "time_zones": time_zones(),
        "council_count": len(rows),
    }
