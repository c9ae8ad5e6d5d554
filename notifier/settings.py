"""Every option of the service, read from `NOTIFIER_…` environment variables and `.env`.

One `Settings` object is built at start-up and passed explicitly to the web app and the worker; nothing reads the
environment anywhere else. The README's configuration table lists the same fields.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from notifier.zones import time_zone


class SettingsError(Exception):
    """A setting has a value the service cannot use; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", env_file=".env", extra="ignore")

    # Where things live. Empty URLs mean "start an embedded one under data_dir".
    database_url: str = ""
    redis_url: str = ""
    smtp_url: str = ""
    data_dir: Path = Path("./var")
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    mail_from: str = "notifier <notifier@localhost>"
    admin_token: str = ""
    contact_url: str = "https://github.com/notifier/notifier"
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Web
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)

    # Polling
    poll_interval_minutes: int = Field(default=30, ge=1)
    poll_max_backoff_minutes: int = Field(default=24 * 60, ge=1)
    poll_connect_timeout: float = Field(default=10.0, gt=0)
    poll_total_timeout: float = Field(default=60.0, gt=0)
    poll_max_response_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    # Requests at once overall: councils are many hosts, each held to the per-host limit. The 400-council cycle is
    # bound by this at 100 ms an answer: 28.5 s with 20, 13.6 s with 40 (bench/ingest.py, bench/results/ingest.md).
    poll_concurrency: int = Field(default=40, ge=1)
    poll_per_host_concurrency: int = Field(default=2, ge=1)

    # Documents (see notifier/ingest/documents.py)
    document_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    document_timeout: float = Field(default=60.0, gt=0)  # seconds an extraction may take
    document_memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=64 * 1024 * 1024)
    document_concurrency: int = Field(default=2, ge=1)  # extractions at once in one worker (each a process)
    # a download claim's lease, renewed every third of it while the worker is alive
    document_lease_seconds: int = Field(default=30, ge=3)
    # how long the matcher holds an event whose documents' text is still coming
    document_text_wait_seconds: int = Field(default=900, ge=0)

    # Email
    alert_batch_seconds: int = Field(default=120, ge=0)
    digest_hour: int = Field(default=7, ge=0, le=23)
    weekly_day: int = Field(default=0, ge=0, le=6, description="0 = Monday")
    default_timezone: str = "Europe/London"
    confirm_token_days: int = Field(default=7, ge=1)
    smtp_rate_per_second: float = Field(default=50.0, gt=0)
    smtp_connections: int = Field(default=4, ge=1)
    # an email claim's lease, renewed every third of it while the worker is alive
    delivery_lease_seconds: int = Field(default=30, ge=3)
    # a worker beats this often; one silent for three beats is gone and its claims are handed back
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)

    # Webhooks
    webhook_allow_private_targets: bool = False
    webhook_timeout: float = Field(default=15.0, gt=0)
    webhook_concurrency: int = Field(default=100, ge=1)  # requests in flight from one worker, all endpoints
    webhook_endpoint_concurrency: int = Field(default=10, ge=1)  # requests in flight to one endpoint, one worker
    # a webhook claim's lease, renewed every third of it while the worker is alive
    webhook_lease_seconds: int = Field(default=30, ge=3)
    webhook_secret_grace_hours: int = Field(default=24, ge=0)  # a rotated secret keeps signing this long
    api_key_grace_hours: int = Field(default=24, ge=0)  # a rotated API key keeps working this long

    # Feeds: a web process trusts what it last read about a feed URL (that it exists, its filter, the newest
    # event id) for this long before asking PostgreSQL again, so a popular feed costs no query at all
    feed_fresh_seconds: float = Field(default=1.0, ge=0)

    # API
    api_rate_limit_per_minute: int = Field(default=600, ge=1)
    subscribe_rate_limit_per_hour: int = Field(default=20, ge=1)
    subscribe_rate_limit_per_client_per_hour: int = Field(default=60, ge=1)  # per client address, any email
    # live previews per client address: one a pause in typing, each a 30-day count
    preview_rate_limit_per_client_per_hour: int = Field(default=600, ge=1)

    # Processes
    demo: bool = False
    worker_max_jobs: int = Field(default=40, ge=1)  # polls are jobs: as many at once as requests (poll_concurrency)
    # The event loop of a worker process (`notifier worker`). uvloop showed no gain in the ingest bench on a busy
    # machine (bench/results/ingest.md), so asyncio's own stays the default until a quiet run says otherwise.
    worker_event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("base_url", "contact_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and not value.startswith(("postgres://", "postgresql://")):
            raise ValueError("must be a postgresql:// URL (or empty for the embedded server)")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL (or empty for the embedded server)")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str) -> str:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("must be an smtp:// or smtps:// URL (or empty for the local sink)")
        return value

    @property
    def user_agent(self) -> str:
        from notifier import __version__

        return f"notifier/{__version__} (+{self.contact_url})"

    def ensure_secret_key(self) -> str:
        """The configured secret key, or one made once and kept in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        self.secret_key = path.read_text().strip()
        return self.secret_key


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning a validation failure into one message per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        lines = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"NOTIFIER_{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from e
