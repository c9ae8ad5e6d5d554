from __future__ import annotations

from pathlib import Path

import pytest

from notifier.settings import Settings, SettingsError, load_settings


def test_settings_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.database_url == ""
    assert s.redis_url == ""
    assert s.poll_interval_minutes == 30
    assert s.digest_hour == 7
    assert s.webhook_allow_private_targets is False


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NOTIFIER_DIGEST_HOUR", "18")
    monkeypatch.setenv("NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    s = load_settings()
    assert s.digest_hour == 18
    assert s.webhook_allow_private_targets is True


def test_settings_read_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("NOTIFIER_BASE_URL=https://alerts.example.org/\n")
    assert load_settings().base_url == "https://alerts.example.org"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NOTIFIER_DIGEST_HOUR", "25"),
        ("NOTIFIER_PORT", "http"),
        ("NOTIFIER_DATABASE_URL", "mysql://localhost/x"),
        ("NOTIFIER_REDIS_URL", "localhost:6379"),
        ("NOTIFIER_SMTP_URL", "mail.example.org"),
        ("NOTIFIER_DEFAULT_TIMEZONE", "Mars/Olympus"),
        ("NOTIFIER_BASE_URL", "notifier.example.org"),
        ("NOTIFIER_LOG_FORMAT", "xml"),
        ("NOTIFIER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "perhaps"),
    ],
)
def test_settings_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert variable in str(e.value)


def test_settings_secret_key_made_once_and_kept(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    first = s.ensure_secret_key()
    again = Settings(_env_file=None, data_dir=tmp_path).ensure_secret_key()  # type: ignore[call-arg]
    assert first == again
    assert len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_settings_user_agent_names_contact() -> None:
    s = Settings(_env_file=None, contact_url="https://council-alerts.example.org/about")  # type: ignore[call-arg]
    assert s.user_agent.startswith("notifier/")
    assert "https://council-alerts.example.org/about" in s.user_agent
