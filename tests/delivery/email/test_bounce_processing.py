"""`notifier bounces process PATH`: bounces and complaints from files or a maildir suppress the right addresses, and
only those, against real PostgreSQL; and a bounce of a message our Mailer really sent comes back to it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from notifier import subscriptions as subs
from notifier.delivery.email.bounce_processing import process_bounces
from notifier.delivery.email.bounces import verp_address
from notifier.delivery.email.mailer import Mailer
from notifier.matching.matcher import SubscriptionIndex, match_events
from notifier.settings import Settings
from tests.factories import Factory
from tests.servers import FIXTURES, SmtpServer

MAIL = FIXTURES / "mail"
SECRET = b"test-verp-secret-not-for-production"  # the secret tests/fixtures/mail's VERP addresses were made with
JANE_VERP = "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"
ALL_FIXTURES = [
    "dsn_postfix_user_unknown.eml", "dsn_exchange_mailbox_full.eml", "dsn_sendmail_delayed.eml",
    "dsn_postfix_expired.eml", "dsn_delivered.eml", "arf_abuse.eml", "arf_abuse_redacted.eml",
    "auto_reply_out_of_office.eml", "exim_failed_recipients.eml",
]


def forged_bounce(victim: str) -> str:
    """A hard bounce naming `victim` that did not come back through any VERP address of ours."""
    text = (MAIL / "dsn_postfix_user_unknown.eml").read_text()
    return text.replace(JANE_VERP, "bounces@alerts.example.org").replace("jane.doe@example.net", victim)


def maildir(root: Path, new: list[str], cur: list[str], extra: dict[str, str] | None = None) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for i, name in enumerate(new):
        shutil.copy(MAIL / name, root / "new" / f"17649{i:05d}.M{i}P1.mx:2,")
    for i, name in enumerate(cur):
        shutil.copy(MAIL / name, root / "cur" / f"17648{i:05d}.M{i}P2.mx:2,S")
    for name, text in (extra or {}).items():
        (root / "new" / name).write_text(text)
    return root


async def statuses(pool: asyncpg.Pool) -> dict[str, str]:
    return {r["email"]: r["status"] for r in await pool.fetch("select email, status from subscribers")}


async def suppressions(pool: asyncpg.Pool) -> dict[str, str]:
    return {r["email"]: r["reason"] for r in await pool.fetch("select email, reason from suppressions")}


async def test_bounces_process_maildir(pool: asyncpg.Pool, factory: Factory, tmp_path: Path) -> None:
    for address in ("jane.doe@example.net", "Alex.Morgan@example.com", "sam.patel@example.com", "victim@example.org"):
        await factory.subscriber(address)
    box = maildir(tmp_path / "Maildir", new=ALL_FIXTURES[:5], cur=ALL_FIXTURES[5:],
                  extra={"1764900000.forged.mx:2,": forged_bounce("victim@example.org")})
    summary = await process_bounces(pool, box, secret=SECRET)
    assert (summary.messages, summary.hard, summary.soft, summary.complaints, summary.other) == (10, 3, 3, 2, 2)
    assert sorted(summary.suppressed) == [
        "alex.morgan@example.com", "chris.b@example.net", "jane.doe@example.net", "pat@example.org.uk"]
    assert summary.untrusted == ["victim@example.org"]
    assert await suppressions(pool) == {
        "jane.doe@example.net": "bounced", "pat@example.org.uk": "bounced",
        "alex.morgan@example.com": "complained", "chris.b@example.net": "complained",
    }
    assert await statuses(pool) == {
        "jane.doe@example.net": "bounced", "Alex.Morgan@example.com": "complained",
        "sam.patel@example.com": "active",  # mailbox full: soft, nothing done
        "victim@example.org": "active",  # the forged report is not acted on
    }
    detail = await pool.fetchval("select detail from suppressions where email = 'jane.doe@example.net'")
    assert detail == ("hard 5.1.1: 550 5.1.1 <jane.doe@example.net>: Recipient address rejected: User unknown in "
                      "virtual mailbox table")
    assert summary.lines()[0] == "10 message(s): 3 hard bounce(s), 2 complaint(s), 3 soft bounce(s), 2 other"
    assert "  sam.patel@example.com: soft 5.2.2, nothing (soft)" in summary.lines()
    assert "  victim@example.org: hard 5.1.1, not trusted (unverified)" in summary.lines()

    # the mailbox is only read: a second run finds the same and changes nothing
    again = await process_bounces(pool, box, secret=SECRET)
    assert again.suppressed == []
    assert sorted(a.recipient for a in again.actions if a.outcome == "already suppressed") == sorted(
        summary.suppressed)
    assert len(await suppressions(pool)) == 4


@pytest.mark.parametrize(
    ("trust", "suppressed"), [(False, {}), (True, {"victim@example.org": "bounced"})]
)
async def test_bounces_process_unverified_only_when_trusted(
    pool: asyncpg.Pool, factory: Factory, tmp_path: Path, trust: bool, suppressed: dict[str, str]
) -> None:
    await factory.subscriber("victim@example.org")
    (tmp_path / "forged.eml").write_text(forged_bounce("victim@example.org"))
    summary = await process_bounces(pool, tmp_path / "forged.eml", secret=SECRET, trust_unverified=trust)
    assert summary.hard == 1
    assert await suppressions(pool) == suppressed


async def test_bounces_process_wrong_secret_acts_on_nothing(pool: asyncpg.Pool, tmp_path: Path) -> None:
    box = maildir(tmp_path / "Maildir", new=ALL_FIXTURES, cur=[])
    summary = await process_bounces(pool, box, secret=b"not the secret the return paths were made with")
    assert summary.suppressed == []
    assert sorted(summary.untrusted) == [
        "alex.morgan@example.com", "jane.doe@example.net", "pat@example.org.uk"]  # chris.b is named only by VERP
    assert await suppressions(pool) == {}


async def test_bounces_process_directory_of_eml_files(pool: asyncpg.Pool, tmp_path: Path) -> None:
    for name in ("dsn_postfix_user_unknown.eml", "dsn_delivered.eml"):
        shutil.copy(MAIL / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a message")  # only .eml files are read from a plain directory
    summary = await process_bounces(pool, tmp_path, secret=SECRET)
    assert (summary.messages, summary.suppressed) == (2, ["jane.doe@example.net"])


async def test_bounce_of_a_message_the_mailer_sent_suppresses_its_recipient(
    pool: asyncpg.Pool, factory: Factory, smtp_server: SmtpServer, settings: Settings, tmp_path: Path
) -> None:
    """The whole loop: the Mailer sends with a VERP return path, the remote server bounces to it, and processing
    the bounce with the service's own secret finds the subscriber."""
    council = await factory.council()
    await factory.subscription(await factory.subscriber("kim@example.org"), councils=[council])
    await factory.event(title="Cabinet")
    await match_events(pool, SubscriptionIndex(), settings)
    mailer = Mailer.create(settings, pool)
    try:
        assert await mailer.send_due() == 1
    finally:
        await mailer.close()
    [sent] = smtp_server.messages
    assert sent.mail_from == verp_address("bounces", "notifier.test", "kim@example.org",
                                          settings.secret_key.encode())
    bounce = (MAIL / "dsn_postfix_user_unknown.eml").read_text()
    bounce = bounce.replace(JANE_VERP, sent.mail_from).replace("jane.doe@example.net", "kim@example.org")
    (tmp_path / "bounce.eml").write_text(bounce)
    summary = await process_bounces(pool, tmp_path / "bounce.eml", secret=settings.ensure_secret_key().encode())
    assert summary.suppressed == ["kim@example.org"]
    assert await statuses(pool) == {"kim@example.org": "bounced"}
    await factory.event(title="Scrutiny")
    await match_events(pool, SubscriptionIndex(), settings)
    mailer = Mailer.create(settings, pool)
    try:
        assert await mailer.send_due() == 0
    finally:
        await mailer.close()
    assert len(smtp_server.messages) == 1


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NOTIFIER_DATABASE_URL": settings.database_url,
        "NOTIFIER_REDIS_URL": settings.redis_url,
        "NOTIFIER_SECRET_KEY": settings.secret_key,
        "NOTIFIER_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "notifier.cli", "bounces", "process", *args],
        env=env, cwd=settings.data_dir, capture_output=True, text=True, timeout=60, check=False,
    )


async def test_bounces_process_command(
    pool: asyncpg.Pool, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    secret = settings.secret_key.encode()
    await factory.subscriber("jane.doe@example.net")
    text = (MAIL / "dsn_postfix_user_unknown.eml").read_text()
    text = text.replace(JANE_VERP, verp_address("bounces", "notifier.test", "jane.doe@example.net", secret))
    box = maildir(tmp_path / "Maildir", new=["dsn_exchange_mailbox_full.eml"], cur=[], extra={"1.bounce": text})

    done = run_cli(settings, str(box))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "2 message(s): 1 hard bounce(s), 0 complaint(s), 1 soft bounce(s), 0 other",
        "  jane.doe@example.net: hard 5.1.1, suppressed",
        "  sam.patel@example.com: soft 5.2.2, nothing (soft) (unverified)",  # its VERP is the fixtures' secret's
        "suppressed 1 address(es)",
    ]
    assert await suppressions(pool) == {"jane.doe@example.net": "bounced"}

    again = run_cli(settings, "--json", str(box))
    assert again.returncode == 0, again.stderr
    data: dict[str, Any] = json.loads(again.stdout)
    assert (data["messages"], data["hard"], data["soft"], data["suppressed"]) == (2, 1, 1, [])
    assert [a["outcome"] for a in data["actions"]] == ["already suppressed", "nothing (soft)"]

    missing = run_cli(settings, str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    assert "no such file or directory" in missing.stderr
    assert await subs.is_suppressed(pool, "sam.patel@example.com") is False
