"""A submission port that offers AUTH only after STARTTLS, and a failed check's goodbye."""

from __future__ import annotations

from typing import Any

import pytest

from mailops.mailers.connection import verify_connection
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.faulty_smtp import FaultySMTPServer
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def test_plain_smtp_with_a_password_against_auth_after_starttls_advises_smtp_tls(
    settings: Any, smtp_server: LoopbackSMTPServer
) -> None:
    # Like Postfix with smtpd_tls_auth_only: AUTH is offered only after STARTTLS.
    options = smtp_server.options(use_tls=False)
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": options},
    }

    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.COMMAND)

    row = summary.logs().get()
    assert row.status == MailStatus.FAILED
    assert "use smtp+tls://" in row.error
    assert "implicit TLS" not in row.error
    assert ".." not in row.error
    assert smtp_server.password not in row.error


def test_a_failed_connection_check_still_sends_quit(
    settings: Any, faulty_smtp: FaultySMTPServer
) -> None:
    # The server offers no AUTH, the mailer has a password: the check fails at AUTH.
    options = faulty_smtp.options(username="ops", password="pw-123456")
    settings.MAILERS = {**settings.MAILERS, "relay": {"BACKEND": SMTP_BACKEND, "OPTIONS": options}}

    result = verify_connection("relay")

    assert not result.ok
    assert "AUTH" in result.error
    assert faulty_smtp.quits == 1
