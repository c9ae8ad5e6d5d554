"""The webhook retry schedule, `Retry-After` in both its forms and its bound, and the request timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from notifier.delivery.webhooks.sender import (
    MAX_ATTEMPTS,
    MAX_RETRY_AFTER,
    WebhookSender,
    parse_retry_after,
    retry_delay,
)
from notifier.settings import Settings

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("failed", "delay"),
    [
        # the first attempt goes at once, when the delivery is made; after each failure:
        (1, 5),
        (2, 5 * 60),
        (3, 30 * 60),
        (4, 2 * 3600),
        (5, 5 * 3600),
        (6, 10 * 3600),
        (7, 10 * 3600),
        (8, None),  # eight attempts made: the delivery has failed
    ],
)
def test_retry_delay_follows_the_schedule_then_gives_up(failed: int, delay: int | None) -> None:
    assert retry_delay(failed, None) == delay


def test_retry_schedule_is_eight_attempts_over_about_28_hours() -> None:
    assert MAX_ATTEMPTS == 8
    waits = [retry_delay(n, None) for n in range(1, MAX_ATTEMPTS)]
    assert sum(w for w in waits if w is not None) == 5 + 300 + 1800 + 7200 + 18000 + 36000 + 36000


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        (30.0, 30.0),  # sooner than the schedule's 5 min: honoured
        (7200.0, float(MAX_RETRY_AFTER)),  # two hours: held to the bound
        (10**9, float(MAX_RETRY_AFTER)),
        (0.0, 1.0),  # "now": at least a second, never a tight loop
    ],
)
def test_retry_after_is_honoured_within_bounds(retry_after: float, delay: float) -> None:
    assert MAX_RETRY_AFTER == 3600
    assert retry_delay(2, retry_after) == delay


def test_retry_after_does_not_extend_the_schedule() -> None:
    assert retry_delay(MAX_ATTEMPTS, 10.0) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7200 ", 7200.0),
        ((NOW + timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S GMT"), 120.0),  # an HTTP date
        ("Mon, 07 Dec 2026 11:30:00 GMT", 7200.0),
        ("Mon, 07 Dec 2026 09:00:00 GMT", 0.0),  # already past: at once (held to a second by retry_delay)
        ("Monday, 07-Dec-26 09:32:00 GMT", 120.0),  # the obsolete RFC 850 form
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_header_as_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_http_date_goes_through_the_bound() -> None:
    two_hours = parse_retry_after("Mon, 07 Dec 2026 11:30:00 GMT", NOW)
    assert retry_delay(1, two_hours) == MAX_RETRY_AFTER


def test_webhook_timeout_defaults_to_15_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFIER_WEBHOOK_TIMEOUT", raising=False)
    assert Settings(_env_file=None).webhook_timeout == 15.0  # type: ignore[call-arg]


async def test_webhook_sender_uses_the_default_timeout(
    monkeypatch: pytest.MonkeyPatch, pool: asyncpg.Pool
) -> None:
    monkeypatch.delenv("NOTIFIER_WEBHOOK_TIMEOUT", raising=False)
    sender = WebhookSender.create(Settings(_env_file=None), pool)  # type: ignore[call-arg]
    try:
        assert sender.timeout.total == 15.0
    finally:
        await sender.close()
