"""Time zones by IANA name, with one clear error for a name that is not one.

Councils, subscribers, settings and sources all name zones ("Europe/London"); `zoneinfo` answers a bad name with
a KeyError subclass, or a ValueError for a malformed one, neither of which says what was wrong.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def time_zone(name: str) -> ZoneInfo:
    """The zone called `name`; a ValueError naming it when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e
