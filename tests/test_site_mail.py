"""Every mail the site sends is logged (MAILOPS["AUDIT_ALL_MAIL"]), against a real SMTP server.

The site sends through Django's own API (``send_mail``, ``EmailMessage``,
``send_mass_mail``, ``mail_admins``) to the loopback SMTP server of
``tests/smtp_server.py``; each recipient becomes one ``site`` row with what
the server said, while the sender sees exactly what it saw before.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"
GONE = "550 5.1.1 <gone@example.com>: no such user"


@pytest.fixture
def audit(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}


@pytest.fixture
def server(smtp_server: LoopbackSMTPServer, settings: Any, audit: None) -> LoopbackSMTPServer:
    """The site's default mailer is the loopback SMTP server; auditing is on."""
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}
    return smtp_server


def rows() -> dict[str, MailLog]:
    return {row.recipient: row for row in MailLog.objects.order_by("pk")}


def test_each_recipient_gets_a_row_and_a_refused_one_fails_alone(
    server: LoopbackSMTPServer,
) -> None:
    server.rejected_recipients = {"gone@example.com": GONE}
    message = mail.EmailMessage(
        "Your invoice",
        "See attached.",
        "Billing <billing@example.com>",
        to=["Alice <alice@example.com>", "gone@example.com"],
        cc=["carol@example.com"],
        bcc=["audit@example.com"],
    )

    assert message.send() == 1

    (received,) = server.wait_for_messages(1)
    assert sorted(received.rcpt_tos) == [
        "alice@example.com",
        "audit@example.com",
        "carol@example.com",
    ]
    logged = rows()
    assert set(logged) == {
        "alice@example.com",
        "gone@example.com",
        "carol@example.com",
        "audit@example.com",
    }
    gone = logged.pop("gone@example.com")
    assert (gone.status, gone.smtp_code, gone.sent_at) == (MailStatus.FAILED, 550, None)
    assert "recipient refused" in gone.error
    assert "no such user" in gone.error
    for row in logged.values():
        assert (row.status, row.error, row.smtp_code) == (MailStatus.SENT, "", None)
        assert row.sent_at is not None
    for row in MailLog.objects.all():
        assert row.trigger == MailTrigger.SITE
        assert row.get_trigger_display() == "Site mail"
        assert (row.subject, row.from_email) == ("Your invoice", "Billing <billing@example.com>")
        assert (row.mailer, row.backend) == ("default", SMTP)
        # The id that went on the wire; the body is not kept by default.
        assert row.message_id == received.message_id
        assert row.body == ""
    assert MailLog.objects.values("batch_id").distinct().count() == 1
    # The sender's message is left as it was (Django sets its own id per send).
    assert "Message-ID" not in message.extra_headers


def test_a_message_id_set_by_the_sender_is_kept(server: LoopbackSMTPServer) -> None:
    message = mail.EmailMessage(
        "Hi", "Body", to=["alice@example.com"], headers={"Message-ID": "<own-id@example.com>"}
    )

    message.send()

    (received,) = server.wait_for_messages(1)
    assert received.message_id == "<own-id@example.com>"
    assert MailLog.objects.get().message_id == "<own-id@example.com>"
    assert message.extra_headers == {"Message-ID": "<own-id@example.com>"}


def test_nothing_is_logged_with_auditing_off(
    smtp_server: LoopbackSMTPServer, settings: Any
) -> None:
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}

    assert mail.send_mail("Hi", "Body", None, ["alice@example.com"]) == 1

    smtp_server.wait_for_messages(1)
    assert not MailLog.objects.exists()


def test_the_setting_is_read_at_each_send(server: LoopbackSMTPServer, settings: Any) -> None:
    backend = mail.mailers["default"]
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": False}
    backend.send_messages([mail.EmailMessage("Off", "Body", to=["a@example.com"])])
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}
    backend.send_messages([mail.EmailMessage("On", "Body", to=["b@example.com"])])

    server.wait_for_messages(2)
    assert list(MailLog.objects.values_list("subject", flat=True)) == ["On"]


def test_server_down_still_raises_and_fails_every_recipient(
    closed_port: int, settings: Any, audit: None
) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": SMTP, "OPTIONS": {"host": "127.0.0.1", "port": closed_port}}
    }

    with pytest.raises(ConnectionRefusedError):
        mail.send_mail("Reset", "Body", None, ["alice@example.com", "bob@example.com"])

    logged = rows()
    assert set(logged) == {"alice@example.com", "bob@example.com"}
    for row in logged.values():
        assert row.status == MailStatus.FAILED
        assert row.error.startswith("[default] ")
        assert "refused" in row.error.lower()


def test_fail_silently_still_returns_zero_and_the_rows_say_why(
    smtp_server: LoopbackSMTPServer, closed_port: int, settings: Any, audit: None
) -> None:
    smtp_server.rejected_recipients = {"gone@example.com": GONE}
    settings.MAILERS = {
        "down": {
            "BACKEND": SMTP,
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port, "fail_silently": True},
        },
        "quiet": {"BACKEND": SMTP, "OPTIONS": smtp_server.options(fail_silently=True)},
    }

    assert mail.send_mail("A", "Body", None, ["alice@example.com"], using="down") == 0
    # Every recipient refused: smtplib raises, Django swallows it.
    assert mail.send_mail("B", "Body", None, ["gone@example.com"], using="quiet") == 0

    down = MailLog.objects.get(subject="A")
    assert (down.status, down.mailer) == (MailStatus.FAILED, "down")
    assert "refused" in down.error.lower()
    gone = MailLog.objects.get(subject="B")
    assert (gone.status, gone.smtp_code) == (MailStatus.FAILED, 550)
    assert "no such user" in gone.error
    assert smtp_server.messages == []


def test_every_recipient_refused_is_raised_and_each_logged(server: LoopbackSMTPServer) -> None:
    server.rejected_recipients = {
        "gone@example.com": GONE,
        "alsogone@example.com": "550 5.1.1 gone too",
    }

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mail.send_mail("X", "Body", None, ["gone@example.com", "alsogone@example.com"])

    logged = rows()
    assert {row.smtp_code for row in logged.values()} == {550}
    assert "gone too" in logged["alsogone@example.com"].error
    assert "no such user" in logged["gone@example.com"].error


def test_a_mass_send_is_written_in_one_insert(server: LoopbackSMTPServer) -> None:
    server.rejected_recipients = {"gone@example.com": GONE}
    datatuple = [
        (f"Digest {n}", "Body", "news@example.com", [f"reader{n}@example.com"]) for n in range(5)
    ]
    datatuple.append(("Digest 5", "Body", "news@example.com", ["gone@example.com"]))

    # The last message's only recipient is refused: smtplib raises for it.
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        mail.send_mass_mail(datatuple)

    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(inserts) == 1
    assert len(server.wait_for_messages(5)) == 5
    logged = rows()
    assert len(logged) == 6
    assert logged.pop("gone@example.com").status == MailStatus.FAILED
    assert {row.status for row in logged.values()} == {MailStatus.SENT}
    assert MailLog.objects.values("batch_id").distinct().count() == 1
    assert MailLog.objects.values("message_id").distinct().count() == 6


def test_messages_after_a_failing_one_are_logged_as_not_attempted(
    server: LoopbackSMTPServer,
) -> None:
    server.rejected_recipients = {"gone@example.com": GONE}
    messages = [
        mail.EmailMessage("1", "Body", to=["first@example.com"]),
        mail.EmailMessage("2", "Body", to=["gone@example.com"]),
        mail.EmailMessage("3", "Body", to=["third@example.com"]),
    ]

    with pytest.raises(smtplib.SMTPRecipientsRefused):
        mail.mailers["default"].send_messages(messages)

    logged = rows()
    assert logged["first@example.com"].status == MailStatus.SENT
    assert logged["gone@example.com"].smtp_code == 550
    third = logged["third@example.com"]
    assert third.status == MailStatus.FAILED
    assert third.error.startswith("not attempted: the mailer stopped at an earlier error")


def test_mail_admins_is_logged(server: LoopbackSMTPServer, settings: Any) -> None:
    settings.ADMINS = ["ops@example.com", "cto@example.com"]

    mail.mail_admins("Disk full", "Disk full on web-1")

    server.wait_for_messages(1)
    assert set(rows()) == {"ops@example.com", "cto@example.com"}
    assert MailLog.objects.filter(subject__endswith="Disk full").count() == 2


def test_bodies_are_kept_only_when_asked(server: LoopbackSMTPServer, settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "STORE_SITE_MAIL_BODY": True}

    mail.send_mail("Welcome", "Hello Alice", None, ["alice@example.com"])

    assert MailLog.objects.get().body == "Hello Alice"


def test_other_backends_are_logged_from_their_return_value(settings: Any, audit: None) -> None:
    mail.send_mail("Local", "Body", None, ["alice@example.com"], using="outbox")

    (row,) = MailLog.objects.all()
    assert (row.status, row.mailer) == (MailStatus.SENT, "outbox")
    assert row.backend == "django.core.mail.backends.locmem.EmailBackend"
    # locmem keeps a copy of the message exactly as stock Django does: no id added
    # (locmem puts no bytes anywhere, so the row has no Message-ID to name).
    assert mail.outbox[0].extra_headers == {}
    assert row.message_id == ""


def test_mailops_own_test_mails_stay_one_row_each(
    server: LoopbackSMTPServer, settings: Any
) -> None:
    # Django's SMTP backend (bytes over the open connection) and a full
    # message through send_messages (locmem) are both mailops' own.
    smtp = send_test_mail(
        from_addresses(["a@example.com", "b@example.com"]), trigger=MailTrigger.API
    )
    settings.MAILERS = {
        **settings.MAILERS,
        "local": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }
    local = send_test_mail(
        from_addresses(["c@example.com"]), using="local", trigger=MailTrigger.API
    )

    assert (smtp.sent, local.sent) == (2, 1)
    assert MailLog.objects.count() == 3
    assert not MailLog.objects.filter(trigger=MailTrigger.SITE).exists()


def test_a_failing_log_write_is_logged_and_the_mail_still_goes_out(
    server: LoopbackSMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A real database error: the log table is gone (inside the test's transaction).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE mailops_maillog RENAME TO mailops_maillog_gone")

    with caplog.at_level(logging.ERROR, logger="mailops.audit"):
        sent = mail.send_mail("Reset", "Body", None, ["alice@example.com"])

    assert sent == 1
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["alice@example.com"]
    (record,) = [r for r in caplog.records if r.name == "mailops.audit"]
    assert record.levelno == logging.ERROR
    assert "1 log row(s) not written" in record.getMessage()
    # The caller's own transaction is still usable.
    assert get_user_model().objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_rows_are_written_outside_any_transaction_too(server: LoopbackSMTPServer) -> None:
    # Autocommit, as in a view without ATOMIC_REQUESTS or a management command.
    assert not connection.in_atomic_block

    mail.send_mail("One", "Body", None, ["alice@example.com"])
    mail.send_mass_mail([("Two", "Body", None, ["bob@example.com", "carol@example.com"])])

    server.wait_for_messages(2)
    assert sorted(MailLog.objects.values_list("subject", "recipient")) == [
        ("One", "alice@example.com"),
        ("Two", "bob@example.com"),
        ("Two", "carol@example.com"),
    ]
