"""The host project's classic ``EMAIL_*`` settings, pointed at a real loopback SMTP server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.smtp_server import LoopbackSMTPServer


@pytest.fixture(autouse=True)
def host_email_backend(settings: Any) -> None:
    """The SMTP backend, as the host configures it.

    Django's test runner swaps ``EMAIL_BACKEND`` for locmem (as it swaps every
    MAILERS backend); the checks must judge what the host wrote.
    """
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def classic_smtp(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    """The loopback STARTTLS server as the classic settings' SMTP server."""
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = smtp_server.username
    settings.EMAIL_HOST_PASSWORD = smtp_server.password
    settings.EMAIL_USE_TLS = True
    settings.EMAIL_TIMEOUT = 5
    return smtp_server
