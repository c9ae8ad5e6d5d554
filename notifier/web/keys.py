"""Typed keys for what the web application holds (see aiohttp's web.AppKey)."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractResolver
from arq.connections import ArqRedis

from notifier.metrics import Metrics
from notifier.settings import Settings
from notifier.tokens import Tokens

SETTINGS = web.AppKey("settings", Settings)
POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", ArqRedis)
METRICS = web.AppKey("metrics", Metrics)
# Set only when the embedded SMTP sink is in use: /dev/outbox lists what it kept.
OUTBOX_DIR = web.AppKey("outbox_dir", str)
TOKENS = web.AppKey("tokens", Tokens)
# Resolves webhook hosts when partners set a URL (tests give one that answers from a table).
RESOLVER = web.AppKey("resolver", AbstractResolver)
