"""The SMTP server's settings from an smtp:// or smtps:// URL."""

from __future__ import annotations

import pytest

from notifier.delivery.email.smtp_config import SmtpConfig


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user:s3cret@mail.example.org:587?starttls=true",
            SmtpConfig("mail.example.org", 587, "user", "s3cret", use_tls=False, starttls=True),
        ),
        ("smtp://mail.example.org:587", SmtpConfig("mail.example.org", 587, starttls=True)),
        ("smtp://mail.example.org", SmtpConfig("mail.example.org", 25, starttls=False)),
        ("smtp://mail.example.org?starttls=true", SmtpConfig("mail.example.org", 587, starttls=True)),
        ("smtp://mail.example.org:2525?starttls=TRUE", SmtpConfig("mail.example.org", 2525, starttls=True)),
        ("smtp://mail.example.org:587?starttls=false", SmtpConfig("mail.example.org", 587, starttls=False)),
        ("smtp://mail.example.org:1025?starttls=0", SmtpConfig("mail.example.org", 1025, starttls=False)),
        ("smtps://mail.example.org", SmtpConfig("mail.example.org", 465, use_tls=True)),
        ("smtps://mail.example.org:2465?starttls=false", SmtpConfig("mail.example.org", 2465, use_tls=True)),
        (
            "smtp://apikey%40example.org:p%40ss%3Aw%2Frd@smtp.example.org:587",
            SmtpConfig("smtp.example.org", 587, "apikey@example.org", "p@ss:w/rd", starttls=True),
        ),
        ("smtp://user@mail.example.org:25", SmtpConfig("mail.example.org", 25, "user", None)),
        (
            "smtp://127.0.0.1:1025?timeout=2.5&validate_certs=false",
            SmtpConfig("127.0.0.1", 1025, timeout=2.5, validate_certs=False),
        ),
        ("SMTP://Mail.Example.ORG:25/", SmtpConfig("mail.example.org", 25)),
        ("smtp://[::1]:25", SmtpConfig("::1", 25)),
        ("  smtp://mail.example.org:25  ", SmtpConfig("mail.example.org", 25)),
    ],
)
def test_smtp_config_from_url_valid(url: str, expected: SmtpConfig) -> None:
    assert SmtpConfig.from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://mail.example.org", "must start with smtp:// or smtps://"),
        ("mail.example.org:587", "must start with smtp:// or smtps://"),
        ("", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://:587", "has no host"),
        ("smtp://mail.example.org:99999", "invalid port"),
        ("smtp://mail.example.org:0", "invalid port"),
        ("smtp://mail.example.org:abc", "invalid port"),
        ("smtp://mail.example.org/relay", "path or fragment"),
        ("smtp://mail.example.org#x", "path or fragment"),
        ("smtp://mail.example.org?starttls=maybe", "starttls must be true or false"),
        ("smtp://mail.example.org?starttls", "starttls must be true or false"),
        ("smtp://mail.example.org?validate_certs=nope", "validate_certs must be true or false"),
        ("smtp://mail.example.org?tls=true", "unknown SMTP URL option 'tls'"),
        ("smtp://mail.example.org?starttls=true&starttls=false", "given twice"),
        ("smtp://mail.example.org?timeout=0", "timeout must be a positive number"),
        ("smtp://mail.example.org?timeout=-1", "timeout must be a positive number"),
        ("smtp://mail.example.org?timeout=abc", "timeout must be a positive number"),
        ("smtp://mail.example.org?timeout=nan", "timeout must be a positive number"),
        ("smtp://mail.example.org?timeout=inf", "timeout must be a positive number"),
        ("smtps://mail.example.org?starttls=true", "smtps:// is TLS from the start"),
        ("smtp://:s3cret@mail.example.org", "password but no user name"),
    ],
)
def test_smtp_config_from_url_invalid(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SmtpConfig.from_url(url)


@pytest.mark.parametrize(
    "url", ["smtp://user:hunter2@mail.example.org:99999", "ftp://user:hunter2@mail.example.org", "smtp://:hunter2@h/x"]
)
def test_smtp_config_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(ValueError) as info:
        SmtpConfig.from_url(url)
    assert "hunter2" not in str(info.value)


def test_smtp_config_repr_and_display_hide_the_password() -> None:
    config = SmtpConfig.from_url("smtp://user:hunter2@mail.example.org:587")
    assert "hunter2" not in repr(config)
    assert config.display == "smtp://user@mail.example.org:587"
    assert SmtpConfig.from_url("smtps://[::1]").display == "smtps://[::1]:465"
