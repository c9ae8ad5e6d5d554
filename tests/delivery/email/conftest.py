"""Fixtures for the SMTP client's tests: a fake server, and a certificate for TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from notifier.delivery.email import transaction
from tests.delivery.email.smtp_servers import PoolServer, started


@pytest.fixture
async def server() -> AsyncIterator[PoolServer]:
    s = await started(PoolServer())
    yield s
    await s.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for smtp.test and 127.0.0.1, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=smtp.test",
            "-addext", "subjectAltName=DNS:smtp.test,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["replies", "commands"])
def road(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test twice: once as messages usually go (`transaction`, driven by the replies), once command by command
    (`smtp.exchange`, the road of unusual addresses and messages), which must behave the same."""
    if request.param == "commands":
        monkeypatch.setattr(transaction, "start", lambda *args, **kwargs: None)
    return str(request.param)
