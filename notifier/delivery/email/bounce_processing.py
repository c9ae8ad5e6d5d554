"""Acting on bounces and complaints: the work of `notifier bounces process PATH`.

Reads every message under PATH (one file, a directory of .eml files, or a maildir) with `bounces.iter_messages`,
classifies each with `bounces.classify` and the VERP secret (the Mailer sends from
`verp_address("bounces", domain, recipient, secret)`), and then:

- a hard bounce or a complaint suppresses the address (`subscriptions.suppress`): it is never mailed again;
- a soft bounce (mailbox full, delayed, message too big, ...) does nothing: the address may well work tomorrow;
- anything else (a delivery receipt, an out-of-office reply, a stray message) is counted and left alone.

Anyone can send a report naming any address, so only a report that came back through a valid VERP address (or
whose returned message carries one) is acted on; an unverified one is counted and listed, and suppresses only when
the operator says their bounce mailbox can be trusted (`trust_unverified`). The mailbox is only read: processing
the same messages again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg

from notifier import subscriptions as subs
from notifier.delivery.email.bounces import BounceReport, classify, iter_messages

log = logging.getLogger(__name__)

REASONS = {"hard": "bounced", "complaint": "complained"}


@dataclass(frozen=True, slots=True)
class Action:
    """What was done about one report that named an address."""

    recipient: str
    kind: str  # hard, soft, complaint
    status: str  # the enhanced status code, or the complaint's feedback type
    verified: bool
    outcome: str  # suppressed, already suppressed, nothing (soft), not trusted (unverified)


@dataclass
class BounceSummary:
    """What one run found and did."""

    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0
    other: int = 0  # not a bounce or complaint, or naming nobody
    actions: list[Action] = field(default_factory=list)

    @property
    def suppressed(self) -> list[str]:
        return [a.recipient for a in self.actions if a.outcome == "suppressed"]

    @property
    def untrusted(self) -> list[str]:
        return [a.recipient for a in self.actions if a.outcome == "not trusted"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages, "hard": self.hard, "soft": self.soft, "complaints": self.complaints,
            "other": self.other, "suppressed": self.suppressed, "untrusted": self.untrusted,
            "actions": [
                {"recipient": a.recipient, "kind": a.kind, "status": a.status, "verified": a.verified,
                 "outcome": a.outcome}
                for a in self.actions
            ],
        }

    def lines(self) -> list[str]:
        """The summary for an operator, one fact a line."""
        out = [
            f"{self.messages} message(s): {self.hard} hard bounce(s), {self.complaints} complaint(s), "
            f"{self.soft} soft bounce(s), {self.other} other",
        ]
        out += [f"  {a.recipient}: {a.kind} {a.status}, {a.outcome}" + ("" if a.verified else " (unverified)")
                for a in self.actions]
        out.append(f"suppressed {len(self.suppressed)} address(es)")
        if self.untrusted:
            out.append(f"not acted on: {len(self.untrusted)} hard bounce(s) or complaint(s) without a valid VERP "
                       "address (forgeable; pass --trust-unverified if this mailbox only receives real reports)")
        return out


async def process_bounces(
    pool: asyncpg.Pool, path: Path, *, secret: bytes, trust_unverified: bool = False
) -> BounceSummary:
    """Classify every message under `path` and suppress the addresses that hard-bounced or complained."""
    return await process_messages(pool, iter_messages(path), secret=secret, trust_unverified=trust_unverified)


async def process_messages(
    pool: asyncpg.Pool, messages: Iterable[EmailMessage], *, secret: bytes, trust_unverified: bool = False
) -> BounceSummary:
    summary = BounceSummary()
    for message in messages:
        summary.messages += 1
        report = classify(message, verp_secret=secret)
        if report is None:
            summary.other += 1
            continue
        if report.kind == "hard":
            summary.hard += 1
        elif report.kind == "complaint":
            summary.complaints += 1
        else:
            summary.soft += 1
        summary.actions.append(await _act(pool, report, trust_unverified))
    return summary


async def _act(pool: asyncpg.Pool, report: BounceReport, trust_unverified: bool) -> Action:
    recipient = subs.normalise_email(report.recipient)

    def action(outcome: str) -> Action:
        return Action(recipient, report.kind, report.status, report.verified, outcome)

    if report.kind == "soft":
        return action("nothing (soft)")
    if not report.verified and not trust_unverified:
        log.warning("not acting on an unverified %s report naming %s", report.kind, recipient)
        return action("not trusted")
    if await subs.is_suppressed(pool, recipient):
        return action("already suppressed")
    detail = f"{report.kind} {report.status}: {report.diagnostic}".strip().rstrip(":")[:500]
    await subs.suppress(pool, recipient, REASONS[report.kind], detail)
    log.info("suppressed %s after a %s report (%s)", recipient, report.kind, report.status)
    return action("suppressed")
