"""Bounce and complaint parsing: RFC 3464 DSNs, RFC 5965 ARF reports, VERP return paths, mailboxes."""

from __future__ import annotations

import email.policy
import shutil
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from notifier.delivery.email.bounces import BounceReport, classify, iter_messages, parse_verp, verp_address

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
SECRET = b"test-verp-secret-not-for-production"


def load(name: str) -> EmailMessage:
    return BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes((MAIL / name).read_bytes())


def parse(text: str) -> EmailMessage:
    return BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes(text.encode("utf-8"))


def dsn(
    *, action: str = "failed", status: str = "5.1.1", diagnostic: str = "", final: str = "rfc822; jane.doe@example.net",
    original: str = "", to: str = "bounces@alerts.example.org", status_type: str = "message/delivery-status",
) -> EmailMessage:
    """A minimal RFC 3464 report, for the classification table."""
    fields = [f"Final-Recipient: {final}", f"Action: {action}"]
    if original:
        fields.insert(0, f"Original-Recipient: {original}")
    if status:
        fields.append(f"Status: {status}")
    if diagnostic:
        fields.append(f"Diagnostic-Code: {diagnostic}")
    recipient_block = "\n".join(fields)
    return parse(f"""From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"

--RPT
Content-Type: text/plain

Delivery report.

--RPT
Content-Type: {status_type}

Reporting-MTA: dns; mx.example.net

{recipient_block}

--RPT--
""")


def arf(feedback_type: str, *, rcpt: str = "", to: str = "Alex Morgan <alex.morgan@example.com>") -> EmailMessage:
    rcpt_line = f"Original-Rcpt-To: {rcpt}\n" if rcpt else ""
    return parse(f"""From: abuse@example.com
To: fbl@alerts.example.org
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain

A report.

--ARF
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: Example/1.0
Version: 1
{rcpt_line}
--ARF
Content-Type: text/rfc822-headers

From: Council alerts <alerts@alerts.example.org>
To: {to}
Message-ID: <abc@alerts.example.org>

--ARF--
""")


# ---- the fixtures ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dsn_postfix_user_unknown.eml", BounceReport(
            "jane.doe@example.net", "hard", "5.1.1",
            "550 5.1.1 <jane.doe@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
            message_id="<5b0f1e7c9a2d4c83b6e1f0a9d3c2b7e4@alerts.example.org>")),
        ("dsn_exchange_mailbox_full.eml", BounceReport(
            "sam.patel@example.com", "soft", "5.2.2",
            "554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException."
            "MapiExceptionShutoffQuotaExceeded; Failed to process message due to a permanent exception with message "
            "[BeginDiagnosticData] Cannot open mailbox.[EndDiagnosticData]",
            message_id="<0c1d2e3f4a5b4c6d8e7f9a0b1c2d3e4f@alerts.example.org>")),
        ("dsn_sendmail_delayed.eml", BounceReport(
            "r.jones@example.org", "soft", "4.4.1", "",
            message_id="<7e6d5c4b3a2f4e1d9c8b7a6f5e4d3c2b@alerts.example.org>")),
        ("dsn_postfix_expired.eml", BounceReport(
            "li.wei@example.co.uk", "soft", "4.4.1",
            "delivery temporarily suspended: connect to mx.example.co.uk[203.0.113.40]:25: Connection timed out",
            message_id="<1a2b3c4d5e6f4a7b8c9d0e1f2a3b4c5d@alerts.example.org>")),
        ("arf_abuse.eml", BounceReport(
            "alex.morgan@example.com", "complaint", "abuse",
            "This is an email abuse report for an email message received from IP 198.51.100.5 on Thu, 4 Dec 2025 "
            "14:05:13 +0000. For more information about this format please see https://www.rfc-editor.org/rfc/rfc5965.",
            message_id="<c4d5e6f7a8b94c0d9e1f2a3b4c5d6e7f@alerts.example.org>")),
        ("exim_failed_recipients.eml", BounceReport(
            "pat@example.org.uk", "hard", "5.1.1",
            "550 5.1.1 <pat@example.org.uk>: Recipient address rejected: User unknown")),
        ("dsn_delivered.eml", None),
        ("auto_reply_out_of_office.eml", None),
        ("arf_abuse_redacted.eml", None),  # nobody named, and no secret to read the VERP address with
    ],
)
def test_classify_fixtures(name: str, expected: BounceReport | None) -> None:
    assert classify(load(name)) == expected


@pytest.mark.parametrize(
    ("name", "recipient"),
    [
        ("dsn_postfix_user_unknown.eml", "jane.doe@example.net"),
        ("dsn_exchange_mailbox_full.eml", "sam.patel@example.com"),
        ("dsn_sendmail_delayed.eml", "r.jones@example.org"),
        ("dsn_postfix_expired.eml", "li.wei@example.co.uk"),
        ("arf_abuse.eml", "alex.morgan@example.com"),  # from the complained-about message's Return-Path
        ("arf_abuse_redacted.eml", "chris.b@example.net"),
        ("exim_failed_recipients.eml", "pat@example.org.uk"),  # from Envelope-To
    ],
)
def test_classify_fixtures_verified_by_verp(name: str, recipient: str) -> None:
    report = classify(load(name), verp_secret=SECRET)
    assert report is not None
    assert (report.recipient, report.verified) == (recipient, True)


def test_classify_arf_original_mail_from_verifies() -> None:
    text = (MAIL / "arf_abuse_redacted.eml").read_text()
    # Without the returned message's headers, the report's own Original-Mail-From still carries the VERP address.
    text = text.replace("Return-Path: <bounces+Y2hyaXMuYkBleGFtcGxlLm5ldA.se43ROim@alerts.example.org>\nFrom: Council",
                        "From: Council")
    assert text.count("bounces+") == 1
    report = classify(parse(text), verp_secret=SECRET)
    assert report is not None
    assert (report.recipient, report.verified) == ("chris.b@example.net", True)


def test_classify_wrong_secret_is_unverified() -> None:
    report = classify(load("dsn_postfix_user_unknown.eml"), verp_secret=b"another-secret")
    assert report is not None
    assert (report.recipient, report.verified) == ("jane.doe@example.net", False)


def test_classify_forged_report_cannot_name_a_victim() -> None:
    # Someone with a valid VERP address of their own sends a DSN that names another person.
    own = verp_address("bounces", "alerts.example.org", "mallory@example.org", SECRET)
    report = classify(dsn(final="rfc822; victim@example.com", to=own), verp_secret=SECRET)
    assert report is not None
    assert (report.recipient, report.verified) == ("mallory@example.org", True)
    # Without a valid VERP address the victim is named, but the report says it is unproven.
    forged = classify(dsn(final="rfc822; victim@example.com", to="bounces+dmljdGlt.AAAAAAAA@alerts.example.org"),
                      verp_secret=SECRET)
    assert forged is not None
    assert (forged.recipient, forged.verified) == ("victim@example.com", False)


# ---- classification table --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "kind", "code"),
    [
        ("failed", "5.1.1", "smtp; 550 5.1.1 User unknown", "hard", "5.1.1"),
        ("failed", "5.1.10", "smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound", "hard", "5.1.10"),
        ("failed", "5.7.1", "smtp; 550 5.7.1 Delivery not authorized", "hard", "5.7.1"),
        ("failed", "5.2.2", "smtp; 552 5.2.2 Mailbox full", "soft", "5.2.2"),
        ("failed", "5.0.0", "smtp; 552 Requested mail action aborted: exceeded storage allocation", "soft", "5.0.0"),
        ("failed", "5.5.0", "smtp; 550 user is over quota", "soft", "5.5.0"),
        ("failed", "5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed limit", "soft", "5.3.4"),
        ("failed", "5.4.7", "", "soft", "5.4.7"),
        ("failed", "4.4.7", "smtp; 451 4.4.7 Message expired", "soft", "4.4.7"),
        ("failed", "4.2.2", "", "soft", "4.2.2"),
        ("delayed", "4.4.1", "smtp; 421 4.4.1 Connection timed out", "soft", "4.4.1"),
        ("Delayed", "5.1.1", "", "soft", "5.1.1"),  # still being tried: never a hard bounce
        ("failed", "5.1.1 (bad destination mailbox address)", "", "hard", "5.1.1"),
        ("failed", "", "smtp; 550 5.1.1 <jane.doe@example.net> no such user", "hard", "5.1.1"),
        ("failed", "", "smtp; 550 No such user here", "hard", "5.0.0"),
        ("failed", "", "smtp; 452 Too many recipients", "soft", "4.0.0"),
        ("failed", "", "", "hard", "5.0.0"),
        ("delayed", "", "", "soft", "4.0.0"),
    ],
)
def test_classify_dsn_table(action: str, status: str, diagnostic: str, kind: str, code: str) -> None:
    report = classify(dsn(action=action, status=status, diagnostic=diagnostic))
    assert report is not None
    assert (report.recipient, report.kind, report.status) == ("jane.doe@example.net", kind, code)


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_classify_success_notices_are_not_bounces(action: str) -> None:
    assert classify(dsn(action=action, status="2.0.0")) is None


def test_classify_prefers_original_recipient_over_forwarded_final_recipient() -> None:
    report = classify(dsn(final="rfc822; jane@forwarded.example.org", original="rfc822;jane.doe@example.net"))
    assert report is not None and report.recipient == "jane.doe@example.net"


def test_classify_recipient_in_angle_brackets() -> None:
    report = classify(dsn(final="rfc822;<Jane.Doe@Example.NET>"))
    assert report is not None and report.recipient == "Jane.Doe@Example.NET"


def test_classify_global_delivery_status() -> None:
    report = classify(dsn(final="utf-8; zo\u00eb@example.org", status_type="message/global-delivery-status"))
    assert report is not None
    assert (report.recipient, report.kind, report.status) == ("zo\u00eb@example.org", "hard", "5.1.1")


def test_classify_diagnostic_is_clipped() -> None:
    report = classify(dsn(diagnostic="smtp; 550 5.1.1 " + "x" * 2000))
    assert report is not None and len(report.diagnostic) == 500


@pytest.mark.parametrize(
    ("feedback_type", "expected"),
    [("abuse", "complaint"), ("Abuse", "complaint"), ("fraud", "complaint"), ("not-spam", None),
     ("auth-failure", None), ("virus", None), ("other", None)],
)
def test_classify_arf_feedback_types(feedback_type: str, expected: str | None) -> None:
    report = classify(arf(feedback_type))
    assert (report.kind if report else None) == expected
    if report is not None:
        assert (report.recipient, report.status, report.message_id) == (
            "alex.morgan@example.com", feedback_type.lower(), "<abc@alerts.example.org>"
        )


def test_classify_arf_original_rcpt_to_first() -> None:
    report = classify(arf("abuse", rcpt="<a.morgan@example.com>", to="redacted"))
    assert report is not None and report.recipient == "a.morgan@example.com"


def test_classify_arf_without_any_recipient_is_none() -> None:
    assert classify(arf("abuse", to="[redacted]")) is None


@pytest.mark.parametrize(
    "text",
    [
        "From: jane@example.net\nTo: alerts@alerts.example.org\nSubject: Thanks\n\nThank you for the alert.\n",
        "From: jane@example.net\nTo: alerts@alerts.example.org\nSubject: Mixed\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nAction: failed\n'
        "Status: 5.1.1\n--B--\n",
        "From: x@example.org\nSubject: Report\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="B"\n\n--B\n'
        "Content-Type: message/disposition-notification\n\nDisposition: automatic-action/MDN-sent-automatically; "
        "displayed\n--B--\n",
    ],
)
def test_classify_not_a_report(text: str) -> None:
    assert classify(parse(text)) is None


def test_classify_plain_bounce_ignores_the_returned_copy() -> None:
    text = (MAIL / "exim_failed_recipients.eml").read_text()
    text = text.replace("550 5.1.1", "550").replace("Your weekly council summary", "Your mailbox is full? 452 4.2.2")
    report = classify(parse(text))
    assert report is not None
    assert (report.kind, report.status) == ("hard", "5.0.0")


# ---- VERP ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "recipient",
    ["jane.doe@example.net", "a+tag@example.com", "zo\u00eb@example.org", "O'Neill@Example.CO.UK", "x@y"],
)
def test_verp_round_trip(recipient: str) -> None:
    address = verp_address("bounces", "alerts.example.org", recipient, SECRET)
    local, _, domain = address.partition("@")
    assert domain == "alerts.example.org"
    assert local.startswith("bounces+")
    assert address.isascii() and " " not in address
    assert parse_verp(address, SECRET) == recipient
    assert parse_verp(f"<{address}>", SECRET) == recipient


def test_verp_address_exact() -> None:
    assert verp_address("bounces", "alerts.example.org", "jane.doe@example.net", SECRET) == (
        "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org"
    )


def _swap(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


@pytest.mark.parametrize(
    "address",
    [
        _swap("bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IWK@alerts.example.org", 40),  # forged HMAC
        # victim@example.com encoded with jane's tag
        "bounces+dmljdGltQGV4YW1wbGUuY29t.L1ar2IWK@alerts.example.org",
        "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.l1ar2iwk@alerts.example.org",  # case folded in transit
        "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQ.L1ar2IW@alerts.example.org",  # short tag
        "bounces+amFuZS5kb2VAZXhhbXBsZS5uZXQL1ar2IWK@alerts.example.org",  # no separator
        "bounces+am!uZS5.L1ar2IWK@alerts.example.org",
        "bounces+%%%.L1ar2IWK@alerts.example.org",
        "bounces@alerts.example.org",
        "alerts@alerts.example.org",
        "not an address",
        "",
    ],
)
def test_parse_verp_refuses(address: str) -> None:
    assert parse_verp(address, SECRET) is None


def test_parse_verp_other_secret_refused() -> None:
    address = verp_address("bounces", "alerts.example.org", "jane.doe@example.net", SECRET)
    assert parse_verp(address, b"rotated-secret") is None


@pytest.mark.parametrize(
    ("local", "domain", "recipient", "secret", "match"),
    [
        ("bounces", "alerts.example.org", "jane.doe@example.net", b"", "secret"),
        ("bounces+x", "alerts.example.org", "jane.doe@example.net", SECRET, "bounce_local"),
        ("", "alerts.example.org", "jane.doe@example.net", SECRET, "bounce_local"),
        ("bounces", "alerts@example.org", "jane.doe@example.net", SECRET, "domain"),
        ("bounces", "alerts.example.org", "jane.doe", SECRET, "email address"),
        ("bounces", "alerts.example.org", "jane doe@example.net", SECRET, "email address"),
    ],
)
def test_verp_address_refuses_bad_input(local: str, domain: str, recipient: str, secret: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        verp_address(local, domain, recipient, secret)


# ---- mailboxes -------------------------------------------------------------------------------------------------------


def test_iter_messages_single_file() -> None:
    [msg] = list(iter_messages(MAIL / "arf_abuse.eml"))
    assert msg["Message-ID"] == "<20251204204107.3F2A9@mail.example.com>"


def test_iter_messages_directory_of_eml_files() -> None:
    messages = list(iter_messages(MAIL))
    assert len(messages) == 9  # SOURCES.md is not a message
    assert messages[0]["Subject"] == (
        "FW: Leicestershire County Council: Health and Wellbeing Board, 4 Dec 2025 14:00 moved to 11 Dec 2025 10:00"
    )


def test_iter_messages_maildir(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    shutil.copy(MAIL / "dsn_postfix_user_unknown.eml", tmp_path / "cur" / "1764857112.M1P2.mx:2,S")
    shutil.copy(MAIL / "arf_abuse.eml", tmp_path / "new" / "1764880867.M3P4.mx")
    shutil.copy(MAIL / "dsn_delivered.eml", tmp_path / "tmp" / "1764880999.M5P6.mx")  # still being written
    (tmp_path / "new" / ".hidden").write_text("not mail")
    reports = [classify(m, verp_secret=SECRET) for m in iter_messages(tmp_path)]
    assert [(r.recipient, r.kind) if r else None for r in reports] == [
        ("alex.morgan@example.com", "complaint"),
        ("jane.doe@example.net", "hard"),
    ]


def test_iter_messages_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_messages(tmp_path / "missing"))


@pytest.mark.parametrize("space", [" ", "\t", "\n", "\u00a0", "\u2003", "\x1c"])
def test_verp_refuses_white_space_anywhere(space: str) -> None:
    secret = b"a-verp-secret"
    assert verp_address("bounces", "alerts.example.org", "jane@example.net", secret)
    with pytest.raises(ValueError, match="not an email address"):
        verp_address("bounces", "alerts.example.org", f"jane{space}doe@example.net", secret)
    with pytest.raises(ValueError, match="not a domain"):
        verp_address("bounces", f"alerts.example.org{space}", "jane@example.net", secret)
