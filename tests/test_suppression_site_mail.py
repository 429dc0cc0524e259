"""Site mail and the suppression list (SUPPRESS_SITE_MAIL), at a real loopback SMTP server.

Suppressed recipients are taken off the message before Django sends it and
logged as ``suppressed``; the sender's return value counts only what was
sent; the sender's message is left as it was; password resets go through.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from mailops.models import MailLog, MailStatus
from mailops.suppression import suppress_address
from mailops.suppression.bypass import BypassPathError, code_of
from mailops.suppression.models import SuppressionReason
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def server(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True, "SUPPRESS_SITE_MAIL": True}
    settings.ALLOWED_HOSTS = ["testserver"]
    suppress_address(
        "dead@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 no such user"
    )
    return smtp_server


def statuses() -> dict[str, str]:
    return dict(MailLog.objects.order_by("pk").values_list("recipient", "status"))


def test_send_mail_to_a_suppressed_and_a_good_address_sends_one_and_logs_both(
    server: LoopbackSMTPServer,
) -> None:
    sent = mail.send_mail(
        "Hello", "Body", "site@example.com", ["Dead@Example.com", "good@example.com"]
    )

    assert sent == 1
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["good@example.com"]
    assert b"Dead@Example.com" not in received.data
    assert statuses() == {"Dead@Example.com": "suppressed", "good@example.com": "sent"}
    dead = MailLog.objects.get(status=MailStatus.SUPPRESSED)
    assert dead.error.startswith("suppressed since ")
    assert dead.error.endswith(": 5.1.1 no such user")
    assert dead.sent_at is None


def test_a_message_to_suppressed_addresses_only_is_not_sent_nor_counted(
    server: LoopbackSMTPServer,
) -> None:
    messages = [
        mail.EmailMessage("One", "x", "site@example.com", ["dead@example.com"]),
        mail.EmailMessage("Two", "y", "site@example.com", ["good@example.com"]),
    ]

    with mail.mailers["default"] as connection:
        assert connection.send_messages(messages) == 1

    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["good@example.com"]
    rows = list(MailLog.objects.order_by("pk").values_list("subject", "status"))
    assert rows == [("One", "suppressed"), ("Two", "sent")]
    # Exactly one message reached the server, however long it is watched.
    assert len(server.messages) == 1


def test_every_recipient_suppressed_sends_nothing_and_returns_0(
    server: LoopbackSMTPServer,
) -> None:
    assert mail.send_mail("Hello", "Body", "site@example.com", ["dead@example.com"]) == 0
    assert server.messages == []
    assert statuses() == {"dead@example.com": "suppressed"}


def test_the_senders_message_is_left_as_it_was(server: LoopbackSMTPServer) -> None:
    message = mail.EmailMessage(
        "Hello",
        "Body",
        "site@example.com",
        to=["dead@example.com", "good@example.com"],
        cc=["DEAD@example.com"],
    )
    to, cc = message.to, message.cc

    assert message.send() == 1

    assert message.to is to
    assert message.to == ["dead@example.com", "good@example.com"]
    assert message.cc is cc
    assert message.cc == ["DEAD@example.com"]


def test_an_iterator_of_messages_is_filtered_as_the_backend_reads_it(
    server: LoopbackSMTPServer,
) -> None:
    messages = iter(
        [
            mail.EmailMessage("One", "x", "site@example.com", ["dead@example.com"]),
            mail.EmailMessage("Two", "y", "site@example.com", ["good@example.com"]),
        ]
    )
    with mail.mailers["default"] as connection:
        assert connection.send_messages(messages) == 1
    assert statuses() == {"dead@example.com": "suppressed", "good@example.com": "sent"}


def test_with_the_setting_off_suppressed_addresses_get_site_mail(
    server: LoopbackSMTPServer, settings: Any
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SUPPRESS_SITE_MAIL": False}
    assert mail.send_mail("Hello", "Body", "site@example.com", ["dead@example.com"]) == 1
    assert statuses() == {"dead@example.com": "sent"}


def test_a_password_reset_reaches_a_suppressed_address_by_default(
    server: LoopbackSMTPServer, make_user: Callable[..., Any]
) -> None:
    make_user("dead", "dead@example.com")

    response = Client().post(reverse("password_reset"), {"email": "dead@example.com"})

    assert response.status_code == 302
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["dead@example.com"]
    assert statuses() == {"dead@example.com": "sent"}


def test_without_the_bypass_a_password_reset_is_suppressed(
    server: LoopbackSMTPServer, settings: Any, make_user: Callable[..., Any]
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SUPPRESSION_BYPASS": []}
    make_user("dead", "dead@example.com")

    Client().post(reverse("password_reset"), {"email": "dead@example.com"})

    assert server.messages == []
    assert statuses() == {"dead@example.com": "suppressed"}


def test_a_bypass_path_must_name_a_function() -> None:
    from django.contrib.auth.forms import PasswordResetForm

    assert code_of("django.contrib.auth.forms.PasswordResetForm.send_mail") is (
        PasswordResetForm.send_mail.__code__
    )
    with pytest.raises(BypassPathError):
        code_of("django.contrib.auth.forms.NoSuchForm.send_mail")
    with pytest.raises(BypassPathError):
        code_of("django.contrib.auth.forms")


def test_checks_warn_when_site_mail_is_not_audited_or_a_bypass_names_nothing(
    settings: Any,
) -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from mailops.suppression.checks import check_suppression_settings

    settings.MAILOPS = {
        **settings.MAILOPS,
        "AUDIT_ALL_MAIL": False,
        "SUPPRESS_SITE_MAIL": True,
        "SUPPRESSION_BYPASS": ["myproject.forms.NoSuchForm.send_mail"],
    }

    found = {message.id: message.msg for message in check_suppression_settings()}

    assert set(found) == {"mailops.W040", "mailops.W041"}
    assert "'myproject.forms.NoSuchForm.send_mail' is not an importable" in found["mailops.W041"]
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", "--fail-level", "WARNING")
    assert "mailops.W040" in str(raised.value)
    assert "mailops.W041" in str(raised.value)


def test_a_bad_bypass_setting_is_e014() -> None:
    from mailops.conf import setting_problem

    assert "dotted paths" in setting_problem("SUPPRESSION_BYPASS", "not a list")
    assert "share between 0 and 1" in setting_problem("BOUNCE_RATE_WARNING", 2)
    assert "http:// or https://" in setting_problem("ALERT_WEBHOOK", "ftp://x")
