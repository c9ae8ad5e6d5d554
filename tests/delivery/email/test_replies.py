"""What a mail server's replies mean: the retry schedule and the classification of replies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from notifier.delivery.email.replies import EMAIL_MAX_ATTEMPTS, EMAIL_RETRY_DELAYS, classify_reply, next_retry


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=5)),
        (3, timedelta(minutes=30)),
        (4, timedelta(hours=2)),
        (5, timedelta(hours=6)),
        (6, timedelta(hours=12)),
        (7, timedelta(hours=24)),
        (8, None),
        (100, None),
    ],
)
def test_next_retry_schedule(attempts: int, expected: timedelta | None) -> None:
    assert next_retry(attempts) == expected


def test_next_retry_schedule_shape() -> None:
    assert EMAIL_MAX_ATTEMPTS == len(EMAIL_RETRY_DELAYS) + 1 == 8
    assert list(EMAIL_RETRY_DELAYS) == sorted(EMAIL_RETRY_DELAYS)


@pytest.mark.parametrize("attempts", [0, -1])
def test_next_retry_invalid(attempts: int) -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        next_retry(attempts)


GMAIL_NO_SUCH_USER = (
    "5.1.1 The email account that you tried to reach does not exist. Please try\n"
    "5.1.1 double-checking the recipient's email address for typos or\n"
    "5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp"
)


@pytest.mark.parametrize(
    ("code", "text", "stage", "outcome"),
    [
        (250, "2.0.0 Ok: queued as 4ABC123", "data", "ok"),
        (251, "2.1.5 User not local; will forward", "rcpt", "ok"),
        # bad addresses
        (550, "5.1.1 <x@example.org>: Recipient address rejected: User unknown in virtual mailbox table", "rcpt",
         "bad"),
        (550, GMAIL_NO_SUCH_USER, "rcpt", "bad"),
        (553, "5.1.3 Bad recipient address syntax", "rcpt", "bad"),
        (550, "5.1.2 Host unknown (Name server: example.invalid: host not found)", "rcpt", "bad"),
        (551, "5.1.6 Recipient has moved; no forwarding address", "rcpt", "bad"),
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "rcpt", "bad"),
        (550, "5.2.1 The email account that you tried to reach is disabled.", "rcpt", "bad"),
        (550, "Requested action not taken: mailbox unavailable", "rcpt", "bad"),
        (550, "5.5.0 Requested action not taken: mailbox unavailable (S2017062302)", "rcpt", "bad"),
        (550, "No such user here", "rcpt", "bad"),
        (554, "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]", "rcpt", "bad"),
        (550, "5.1.0 Address rejected: user unknown", "rcpt", "bad"),
        (554, "5.4.4 SMTPSEND.DNS.NonExistentDomain; nonexistent domain", "rcpt", "bad"),
        (550, "5.1.1 no such user", "data", "bad"),
        # permanent, but the address is fine
        (552, "5.2.2 The email account that you tried to reach is over quota.", "rcpt", "permanent"),
        (552, "5.2.2 mailbox full", "data", "permanent"),
        (552, "Requested mail action aborted: exceeded storage allocation", "rcpt", "permanent"),
        (550, "mailbox unavailable: mailbox full", "rcpt", "permanent"),
        (550, "5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org", "rcpt",
         "permanent"),
        (554, "5.7.1 <x@example.org>: Relay access denied", "rcpt", "permanent"),
        (550, "5.7.1 Recipient rejected: user unknown", "rcpt", "permanent"),
        (550, "5.4.1 Recipient address rejected: Access denied", "rcpt", "permanent"),
        (554, "5.6.0 Message content rejected", "data", "permanent"),
        (552, "5.3.4 Message size exceeds fixed limit", "data", "permanent"),
        (554, "Transaction failed", "data", "permanent"),
        # temporary
        (450, "4.2.1 mailbox temporarily unavailable", "rcpt", "temporary"),
        (451, "4.3.0 try later", "data", "temporary"),
        (452, "4.2.2 The email account that you tried to reach is over quota", "rcpt", "temporary"),
        (421, "4.7.0 Try again later, closing connection", "mail", "temporary"),
        (450, "4.1.1 user unknown (lookup failed)", "rcpt", "temporary"),
        # the relay refusing us: temporary until an operator fixes it; the message's own faults are permanent
        (553, "5.1.8 Sender address rejected: Domain not found", "mail", "temporary"),
        (530, "5.7.0 Authentication required", "mail", "temporary"),
        (535, "5.7.8 Authentication credentials invalid", "connect", "temporary"),
        (554, "5.7.1 Sender rejected: not authorised", "mail", "temporary"),
        (552, "5.3.4 Message size exceeds fixed maximum message size", "mail", "permanent"),
        (552, "Message size exceeds fixed maximum message size", "mail", "permanent"),
    ],
)
def test_classify_reply_table(code: int, text: str, stage: Any, outcome: str) -> None:
    result = classify_reply(code, text, stage=stage)
    got = (result.ok, result.permanent, result.address_bad)
    expected = {
        "ok": (True, False, False),
        "bad": (False, True, True),
        "permanent": (False, True, False),
        "temporary": (False, False, False),
    }[outcome]
    assert got == expected
    assert result.code == code


@pytest.mark.parametrize(
    ("code", "text", "message"),
    [
        (550, GMAIL_NO_SUCH_USER, "550 5.1.1 The email account that you tried to reach does not exist. Please try "
         "double-checking the recipient's email address for typos or unnecessary spaces. "
         "https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp"),
        (451, "4.3.0 try later", "451 4.3.0 try later"),
        (554, "", "554"),
        (550, "first line\nsecond line", "550 first line second line"),
    ],
)
def test_classify_reply_message_is_one_line(code: int, text: str, message: str) -> None:
    assert classify_reply(code, text).message == message
