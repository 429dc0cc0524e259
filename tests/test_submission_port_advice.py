"""A submission port that offers AUTH only after STARTTLS, and a failed check's goodbye.

A send and the connection check get their advice from one classifier
(``describe_failure``): the same server gives the same text in both.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from mailops.mailers.connection import verify_connection
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.faulty_smtp import FaultySMTPServer
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
AUTH_BEFORE_STARTTLS = (
    "the server does not offer AUTH before STARTTLS, and the mailer does not use TLS: "
    "use smtp+tls:// (use_tls=True)"
)


def use_default(settings: Any, options: dict[str, Any]) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": options},
    }


def send_and_check() -> tuple[MailLog, str]:
    """The failed send's row and the connection check's error, for the default mailer."""
    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.COMMAND)
    row = summary.logs().get()
    assert row.status == MailStatus.FAILED
    result = verify_connection("default")
    assert not result.ok
    return row, result.error


def test_plain_smtp_with_a_password_against_auth_after_starttls_advises_smtp_tls(
    settings: Any, smtp_server: LoopbackSMTPServer
) -> None:
    # Like Postfix with smtpd_tls_auth_only: AUTH is offered only after STARTTLS.
    use_default(settings, smtp_server.options(use_tls=False))

    row, check_error = send_and_check()

    # One classifier: the row carries the check's advice, word for word.
    assert check_error == f"AUTH: {AUTH_BEFORE_STARTTLS}"
    assert row.error == f"[default] {AUTH_BEFORE_STARTTLS}"
    assert "implicit TLS" not in row.error
    assert ".." not in row.error
    assert smtp_server.password not in row.error
    assert smtp_server.auth_attempts == 0


def test_site_mail_through_plain_smtp_with_a_password_gets_the_same_advice(
    settings: Any, smtp_server: LoopbackSMTPServer
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}
    use_default(settings, smtp_server.options(use_tls=False))

    with pytest.raises(smtplib.SMTPNotSupportedError):
        mail.send_mail("Hello", "Body", "ops@example.com", ["a@example.com"])

    row = MailLog.objects.get(trigger=MailTrigger.SITE)
    assert row.error == f"[default] {AUTH_BEFORE_STARTTLS}"
    assert smtp_server.password not in row.error


def test_starttls_required_against_a_server_without_tls_gets_the_same_advice_from_both(
    settings: Any, smtp_server_factory: Callable[..., LoopbackSMTPServer]
) -> None:
    server = smtp_server_factory(tls_mode="none")
    use_default(settings, server.options(use_tls=True))

    row, check_error = send_and_check()

    advice = check_error.removeprefix("STARTTLS: ")
    assert advice.startswith("the server does not offer STARTTLS, which the mailer requires")
    assert "implicit TLS (smtps://, port 465)" in advice
    assert row.error == f"[default] {advice}"
    assert server.auth_attempts == 0


def test_a_server_without_auth_gets_the_same_advice_from_both(
    settings: Any, faulty_smtp: FaultySMTPServer
) -> None:
    # No STARTTLS and no AUTH at all: TLS would not help, a password is not wanted.
    use_default(settings, faulty_smtp.options(username="ops", password="pw-123456"))

    row, check_error = send_and_check()

    advice = check_error.removeprefix("AUTH: ")
    assert advice == (
        "the server does not offer AUTH; if it relays without a password, "
        "remove the mailer's username and password"
    )
    assert row.error == f"[default] {advice}"
    assert "pw-123456" not in row.error


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
