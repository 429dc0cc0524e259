"""A server that echoes credentials cannot get them into a log line or a debug page.

The loopback SMTP server quotes the submitted user and password back in its
535 reply, as some servers do. smtplib keeps that reply in
``SMTPAuthenticationError`` (and in its own frame's ``last_exception``);
Django's ``django.contrib.auth`` logs the raw exception of a failed
password-reset mail, and the DEBUG error page shows exception messages and
frame variables. The reference project's ``LOGGING`` (with
``mailops.redaction.RedactSecretsFilter``) and its exception reporter and
filter must mask the password in all of them.
"""

from __future__ import annotations

import base64
import gc
import html
import io
import logging.config
import smtplib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils.log import configure_logging

import site_config.settings as reference_settings
from mailops.redaction import REDACTED, RedactSecretsFilter
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"
# The README's example password, and a long one with characters servers escape.
PASSWORDS = ["pw", 'Zq9"kT\\w8-Lx']


def leaked_forms(password: str, username: str) -> list[str]:
    """How the password would show if not masked: raw, quoted, escaped, encoded."""
    blob = f"\0{username}\0{password}".encode()
    forms = [
        f"'{password}'",
        f'"{password}"',
        repr(password),
        repr(repr(password).encode()),
        html.escape(f"'{password}'"),
        html.escape(repr(repr(password).encode())),
        base64.b64encode(blob).decode(),
    ]
    if len(password) >= 4:
        # Its distinctive start: found in any escaped or quoted form of it.
        forms += [password, html.escape(password), password[:3]]
    return forms


@pytest.fixture
def echoing_server(smtp_server: LoopbackSMTPServer) -> Iterator[LoopbackSMTPServer]:
    smtp_server.echo_credentials_on_auth_failure = True
    yield smtp_server
    # Django's SMTP backend keeps the connection of a failed login until the
    # backend is closed or collected, and the logged exception (kept by
    # pytest's log capture) keeps the backend: close such connections so the
    # loopback server does not wait out its idle timeout.
    for leftover in gc.get_objects():
        # type(), not isinstance(): the latter would evaluate lazy objects.
        if issubclass(type(leftover), smtplib.SMTP) and leftover.sock is not None:
            leftover.close()


@pytest.fixture
def reference_log() -> Iterator[io.StringIO]:
    """What the reference project's LOGGING writes to the server's console."""
    logging.config.dictConfig(reference_settings.LOGGING)
    written = io.StringIO()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(written)
    yield written
    configure_logging(django_settings.LOGGING_CONFIG, django_settings.LOGGING)


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_failed_password_reset_mail_is_logged_without_the_echoed_password(
    echoing_server: LoopbackSMTPServer,
    settings: Any,
    make_user: Callable[..., Any],
    reference_log: io.StringIO,
    password: str,
) -> None:
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.MAILERS = {
        "default": {"BACKEND": SMTP, "OPTIONS": echoing_server.options(password=password)}
    }
    make_user("alice", "alice@example.com")

    response = Client().post(reverse("password_reset"), {"email": "alice@example.com"})

    assert response.status_code == 302
    assert echoing_server.auth_attempts >= 1
    log = reference_log.getvalue()
    # Django's own logger wrote the failure, with the server's reply ...
    assert "Failed to send password reset email" in log
    assert "SMTPAuthenticationError" in log
    assert "535" in log
    # ... and the password in none of its forms.
    assert REDACTED in log
    for form in leaked_forms(password, echoing_server.username or ""):
        assert form not in log, form


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_debug_page_of_a_failed_smtp_login_shows_no_password(
    echoing_server: LoopbackSMTPServer, settings: Any, password: str
) -> None:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.ROOT_URLCONF = "tests.secret_echo_urls"
    settings.DEFAULT_EXCEPTION_REPORTER = getattr(
        reference_settings, "DEFAULT_EXCEPTION_REPORTER", "django.views.debug.ExceptionReporter"
    )
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = (
        reference_settings.DEFAULT_EXCEPTION_REPORTER_FILTER
    )
    settings.MAILERS = {
        "default": {"BACKEND": SMTP, "OPTIONS": echoing_server.options(password=password)}
    }

    response = Client(raise_request_exception=False).get("/open-mailer/")

    assert response.status_code == 500
    page = response.content.decode()
    # The technical page, with the exception and smtplib's frames ...
    assert "SMTPAuthenticationError" in page
    assert "last_exception" in page
    assert "535" in page
    # ... and the password nowhere in it.
    for form in leaked_forms(password, echoing_server.username or ""):
        assert form not in page, form
    assert html.escape(REDACTED) in page or REDACTED in page


def test_the_filter_masks_message_arguments_and_traceback_for_its_handler_only(
    settings: Any,
) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": SMTP, "OPTIONS": {"host": "h", "username": "u", "password": "pw"}}
    }
    filtered, unfiltered = io.StringIO(), io.StringIO()
    with_filter = logging.StreamHandler(filtered)
    with_filter.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.secret_echo")
    logger.addHandler(with_filter)
    logger.addHandler(logging.StreamHandler(unfiltered))
    try:
        try:
            raise smtplib.SMTPAuthenticationError(535, b"bad (password 'pw')")
        except smtplib.SMTPAuthenticationError:
            logger.exception("login as %s with password %s failed", "u", "pw")
    finally:
        logger.handlers.clear()

    text = filtered.getvalue()
    assert f"with password {REDACTED} failed" in text
    assert f"password '{REDACTED}'" in text  # in the traceback's last line
    assert "'pw'" not in text
    # A handler without the filter is not affected by it.
    assert "with password pw failed" in unfiltered.getvalue()
