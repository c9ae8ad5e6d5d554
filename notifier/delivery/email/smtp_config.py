"""Where and how to reach the mail server: `SmtpConfig`, read from an `smtp://` or `smtps://` URL."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

_QUERY_KEYS = ("starttls", "timeout", "validate_certs")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to connect: `smtp://user:pass@host:587?starttls=true` or `smtps://host:465`."""

    host: str
    port: int
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    use_tls: bool = False  # implicit TLS from the first byte (smtps, usually port 465)
    starttls: bool = False  # upgrade a plain connection with STARTTLS, and refuse to go on without it
    timeout: float = 60.0  # seconds, for connecting and for each reply
    validate_certs: bool = True

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("SMTP host is empty")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SMTP port must be between 1 and 65535, got {self.port}")
        if self.use_tls and self.starttls:
            raise ValueError("implicit TLS (smtps://) and STARTTLS cannot both be used")
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"SMTP timeout must be a positive number of seconds, got {self.timeout}")
        if self.password is not None and not self.username:
            raise ValueError("SMTP password given without a user name")

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        """Parse an `smtp://` or `smtps://` URL; user and password are percent-decoded."""
        parts = urlsplit(url.strip())
        shown = _redact(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP URL must start with smtp:// or smtps://, got {shown!r}")
        if not parts.hostname:
            raise ValueError(f"SMTP URL has no host: {shown!r}")
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"SMTP URL must not have a path or fragment: {shown!r}")
        try:
            port = parts.port
        except ValueError as e:
            raise ValueError(f"SMTP URL has an invalid port: {shown!r}") from e

        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            name = key.lower()
            if name not in _QUERY_KEYS:
                raise ValueError(f"unknown SMTP URL option {key!r} (known: {', '.join(_QUERY_KEYS)})")
            if name in options:
                raise ValueError(f"SMTP URL option {key!r} given twice")
            options[name] = value

        starttls = _parse_bool("starttls", options["starttls"]) if "starttls" in options else None
        validate = _parse_bool("validate_certs", options["validate_certs"]) if "validate_certs" in options else True
        timeout = _parse_timeout(options["timeout"]) if "timeout" in options else 60.0
        use_tls = scheme == "smtps"
        if use_tls and starttls:
            raise ValueError("smtps:// is TLS from the start; starttls=true only makes sense with smtp://")
        if port is None:
            port = 465 if use_tls else 587 if starttls else 25
        if port == 0:
            raise ValueError(f"SMTP URL has an invalid port: {shown!r}")
        if starttls is None:
            starttls = not use_tls and port == 587

        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise ValueError(f"SMTP URL has a password but no user name: {shown!r}")
        return cls(
            host=parts.hostname,
            port=port,
            username=username,
            password=password,
            use_tls=use_tls,
            starttls=starttls,
            timeout=timeout,
            validate_certs=validate,
        )

    @property
    def display(self) -> str:
        """The server as a URL without the password, for logs and error messages."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self.use_tls else 'smtp'}://{user}{host}:{self.port}"


def _redact(url: str) -> str:
    scheme, sep, rest = url.strip().partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"SMTP URL option {name} must be true or false, got {value!r}")


def _parse_timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"SMTP URL option timeout must be a positive number of seconds, got {value!r}")
    return seconds
