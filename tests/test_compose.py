"""docker-compose.yml and the Dockerfile agree with the service (no Docker engine runs here, so read them)."""

from __future__ import annotations

from pathlib import Path

import yaml

from notifier.cli import build_parser
from notifier.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_with_health_checks() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "mailpit", "migrate", "web", "worker"}
    for name in ("postgres", "redis", "mailpit", "web"):
        assert "healthcheck" in services[name], name
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


def test_compose_migrates_before_web_and_worker() -> None:
    services = _compose()["services"]
    assert services["migrate"]["command"] == ["notifier", "migrate"]
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_commands_are_real_cli_commands() -> None:
    parser = build_parser()
    for name in ("migrate", "web", "worker"):
        command = _compose()["services"][name]["command"]
        assert command[0] == "notifier"
        parser.parse_args(command[1:])  # exits (fails the test) on an unknown command or option


def test_compose_environment_matches_settings() -> None:
    fields = {f"NOTIFIER_{name.upper()}" for name in Settings.model_fields}
    for name in ("migrate", "web", "worker"):
        env = _compose()["services"][name]["environment"]
        unknown = set(env) - fields
        assert not unknown, f"{name} sets variables Settings does not have: {unknown}"
        for required in ("NOTIFIER_DATABASE_URL", "NOTIFIER_REDIS_URL", "NOTIFIER_SMTP_URL", "NOTIFIER_SECRET_KEY"):
            assert required in env
        # the values must be valid settings too
        Settings(
            _env_file=None, **{k.removeprefix("NOTIFIER_").lower(): v for k, v in env.items() if "${" not in str(v)}
        )  # type: ignore[arg-type]


def test_dockerfile_copies_what_the_service_needs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for path in ("notifier", "migrations", "templates", "pyproject.toml"):
        assert f"COPY {path}" in text or f" {path} " in text, path
