"""Signed, unguessable tokens for the links in emails: confirm, manage, unsubscribe.

A token is the subscriber id (and, for one subscription, its id) signed with the secret key by itsdangerous, with a
purpose-specific salt so a manage token cannot be used as a confirm token. Confirmation tokens carry a timestamp and
expire; manage and unsubscribe links in emails work for as long as the subscription exists.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

Purpose = Literal["confirm", "manage", "unsubscribe"]


class TokenError(Exception):
    """A token that is forged, mangled, for another purpose, or expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    subscription_id: int | None = None


# A key's bytes XORed with HMAC's inner and outer pads (RFC 2104), as tables for bytes.translate
_INNER = bytes(b ^ 0x36 for b in range(256))
_OUTER = bytes(b ^ 0x5C for b in range(256))


class KeyedHmac:
    """HMAC with one key, the hashes of its padded key begun once: `digest(message)` is `hmac.digest(key, message,
    name)`, for about a third of the CPU (0.93 against 2.53 us, `bench/results/email_send.md`). hmac.digest pads and
    hashes the key again on every call; this copies the two hashes already begun. The standard library's
    `hmac.new(key, digestmod=name).copy()` does the same through OpenSSL's HMAC context, for 1.7 us. Every email sent
    needs four or five HMACs (its links' tokens, its return path)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, name: str) -> None:
        inner, outer = hashlib.new(name), hashlib.new(name)
        if len(key) > inner.block_size:
            key = hashlib.new(name, key).digest()
        key = key.ljust(inner.block_size, b"\0")
        inner.update(key.translate(_INNER))
        outer.update(key.translate(_OUTER))
        self._inner, self._outer = inner, outer

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class _ClockSigner(TimestampSigner):
    """A timestamp signer that reads the time from the clock it is given."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class Tokens:
    """Makes and reads the tokens. `clock` (seconds since the epoch) dates the tokens made and ages those read."""

    def __init__(
        self,
        secret_key: str,
        *,
        confirm_max_age_seconds: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret_key) < 16:
            raise ValueError("the secret key must be at least 16 characters")
        self.confirm_max_age = confirm_max_age_seconds
        self._clock = clock
        self._stamped = (-1, b"")  # the last second a token was made in, and its encoding
        # itsdangerous's default key derivation ("django-concat"): SHA-1 of salt, "signer" and the secret
        self._keys = {
            purpose: KeyedHmac(hashlib.sha1(f"notifier.{purpose}signer{secret_key}".encode()).digest(), "sha1")  # noqa: S324
            for purpose in get_args(Purpose)
        }
        self._serializers = {
            # SHA-1 HMAC as itsdangerous signs by default, but with hashlib's own constructor, which lets hmac use
            # OpenSSL directly rather than its pure-Python fallback: the same tokens, made several times faster
            purpose: URLSafeTimedSerializer(
                secret_key, salt=f"notifier.{purpose}", signer=_ClockSigner,
                signer_kwargs={"clock": clock, "digest_method": hashlib.sha1},
            )
            for purpose in get_args(Purpose)
        }

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def make(self, purpose: Purpose, subscriber_id: int, subscription_id: int | None = None) -> str:
        """A token for `[subscriber_id(, subscription_id)]` in the format of itsdangerous's URLSafeTimedSerializer,
        which `read` uses, put together directly: every message sent needs three, and the library's general path
        costs many times as much, mostly in setting up zlib for its optional compression. That is left out (the
        format marks compressed payloads, so both kinds read back), and so the tokens are the library's own except
        for ids of repeated digits, which it would compress."""
        ids = (subscriber_id,) if subscription_id is None else (subscriber_id, subscription_id)
        return self._sign(purpose, self._value(ids))

    def email_links(self, subscriber_id: int, subscription_ids: Sequence[int]) -> tuple[str, str, list[str]]:
        """The tokens an email's links need: manage, unsubscribe from everything, and unsubscribe from each of
        `subscription_ids`; the same as `make` gives one by one, with the parts they share made once."""
        own = self._value((subscriber_id,))
        return (
            self._sign("manage", own),
            self._sign("unsubscribe", own),
            [self._sign("unsubscribe", self._value((subscriber_id, s))) for s in subscription_ids],
        )

    def _value(self, ids: tuple[int, ...]) -> bytes:
        """The signed part: the ids as compact JSON, as itsdangerous writes them, and the time, both base64."""
        for i in ids:
            if type(i) is not int:
                raise TypeError("token ids must be integers")
        now = int(self._clock())
        at, stamp = self._stamped
        if at != now:  # a second's worth of tokens share the encoding of their time
            stamp = _b64(now.to_bytes(8, "big").lstrip(b"\0"))
            self._stamped = (now, stamp)
        payload = ("[" + ",".join(map(str, ids)) + "]").encode()
        return _b64(payload) + b"." + stamp

    def _sign(self, purpose: Purpose, value: bytes) -> str:
        return (value + b"." + _b64(self._keys[purpose].digest(value))).decode("ascii")

    def read(self, purpose: Purpose, token: str) -> TokenData:
        max_age = self.confirm_max_age if purpose == "confirm" else None
        if len(token) > 512:
            raise TokenError("this link is not valid")
        try:
            payload = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired as e:
            raise TokenError("this link has expired", expired=True) from e
        except BadSignature as e:
            raise TokenError("this link is not valid") from e
        if (
            not isinstance(payload, list)
            or not 1 <= len(payload) <= 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in payload)
        ):
            raise TokenError("this link is not valid")
        return TokenData(payload[0], payload[1] if len(payload) == 2 else None)


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """URL-safe base64 without padding, as itsdangerous writes it (binascii directly: `base64`'s wrappers cost
    more than the encoding of a few bytes)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")
