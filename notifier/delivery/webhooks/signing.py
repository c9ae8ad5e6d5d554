"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret is `whsec_` and the base64 of 24 random bytes. Each request carries `webhook-id` (stable across retries
and replays of one delivery), `webhook-timestamp` (seconds, this attempt) and `webhook-signature`, a space-separated
list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret in force: after a rotation the old
secret signs too for a while, so a receiver still holding it keeps verifying.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as e:
        raise ValueError("a webhook secret is whsec_ and base64") from e


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<signature>` entry for the key."""
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(keys: Iterable[bytes], webhook_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(key, webhook_id, timestamp, body) for key in keys)


def headers(keys: Iterable[bytes], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one signed request."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def webhook_id(delivery_id: int) -> str:
    """The id a receiver deduplicates by: one per delivery, so every retry and replay of it carries the same."""
    return f"msg_{delivery_id}"
