"""Proof of arrival in the admin: the entry page, the "arrival" filter, "Send and verify"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailops.arrival.tasks import verify_batch_task
from mailops.models import ArrivalStatus, MailLog
from tests.admin_fixtures import shown_messages
from tests.imap_server import DeliveringSMTPServer, DovecotServer
from tests.maillog_fixtures import make_log

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/mailops/maillog/"
DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


def verified(arrival: str, recipient: str, **fields: Any) -> MailLog:
    sent_at = timezone.now() - timedelta(minutes=5)
    return make_log(
        recipient=recipient,
        sent_at=sent_at,
        arrival=arrival,
        verified_at=sent_at + timedelta(seconds=30),
        **fields,
    )


def use_dovecot(settings: Any, smtp: DeliveringSMTPServer, dovecot: DovecotServer) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "relay": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": smtp.options(),
        },
    }
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"relay": dovecot.mailbox()}}


def test_entry_page_shows_arrival_time_latency_folder_and_verdicts(admin_client: Client) -> None:
    log = verified(
        ArrivalStatus.INBOX,
        "ops@example.com",
        arrival_folder="INBOX",
        authentication_results="spf=pass dkim=pass dmarc=pass",
    )
    MailLog.objects.filter(pk=log.pk).update(arrived_at=log.sent_at + timedelta(seconds=12))
    page = admin_client.get(f"{CHANGELIST}{log.pk}/change/").content.decode()
    assert "Arrived in the inbox" in page
    assert "spf=pass dkim=pass dmarc=pass" in page
    assert "12 s" in page
    assert "INBOX" in page


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("inbox", {"in@example.com"}),
        ("junk", {"junk@example.com"}),
        ("none", {"plain@example.com"}),
        ("not_arrived", {"lost@example.com", "broken@example.com"}),
    ],
)
def test_arrival_filter(admin_client: Client, choice: str, expected: set[str]) -> None:
    verified(ArrivalStatus.INBOX, "in@example.com")
    verified(ArrivalStatus.JUNK, "junk@example.com")
    verified(ArrivalStatus.MISSING, "lost@example.com")
    verified(ArrivalStatus.ERROR, "broken@example.com")
    make_log(recipient="plain@example.com")
    response = admin_client.get(CHANGELIST, {"arrival": choice})
    assert {log.recipient for log in response.context["cl"].result_list} == expected


def test_send_and_verify_shows_only_for_mailers_with_a_mailbox(
    settings: Any,
    admin_client: Client,
    delivering_smtp_server: DeliveringSMTPServer,
    dovecot_server: DovecotServer,
) -> None:
    use_dovecot(settings, delivering_smtp_server, dovecot_server)
    page = admin_client.get(reverse("admin:mailops_mailers")).content.decode()
    assert page.count("Send and verify") == 1
    row = page[page.index('id="mailer-relay"') :]
    assert "Send and verify" in row[: row.index("</tr>")]
    assert dovecot_server.password not in page


def test_send_and_verify_without_a_worker_runs_inline_and_reports(
    settings: Any,
    admin_client: Client,
    delivering_smtp_server: DeliveringSMTPServer,
    dovecot_server: DovecotServer,
) -> None:
    use_dovecot(settings, delivering_smtp_server, dovecot_server)
    response = admin_client.post(reverse("admin:mailops_mailers_verify"), {"alias": "relay"})
    log = MailLog.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:mailops_batch", args=[log.batch_id])
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.INBOX, "INBOX")
    assert log.recipient == dovecot_server.username
    assert shown_messages(response) == [
        ("success", "Arrived in INBOX (spf=pass dkim=pass dmarc=pass).")
    ]


def test_send_and_verify_with_a_worker_enqueues_the_reading(
    settings: Any,
    admin_client: Client,
    delivering_smtp_server: DeliveringSMTPServer,
    dovecot_server: DovecotServer,
) -> None:
    use_dovecot(settings, delivering_smtp_server, dovecot_server)
    settings.TASKS = DUMMY_TASKS
    response = admin_client.post(reverse("admin:mailops_mailers_verify"), {"alias": "relay"})
    log = MailLog.objects.get()
    assert response.status_code == 302
    assert log.status == "sent"
    # The batch page follows the row until the worker has read the mailbox.
    assert log.arrival == "pending"
    [(level, text)] = shown_messages(response)
    assert level == "info"
    assert "The task worker reads ops@example.com back" in text
    assert f'<a href="{CHANGELIST}{log.pk}/change/">Open it</a>' in text
    # What the worker runs:
    outcome = verify_batch_task.call(batch_id=str(log.batch_id), timeout=10)
    assert outcome == {str(log.pk): "inbox"}
    log.refresh_from_db()
    assert log.arrival == ArrivalStatus.INBOX


def test_send_and_verify_refuses_a_mailer_without_mailbox_and_users_without_permission(
    admin_client: Client, client: Client, make_user: Any
) -> None:
    response = admin_client.post(reverse("admin:mailops_mailers_verify"), {"alias": "default"})
    assert shown_messages(response) == [
        ("error", "Mailer 'default' has no mailbox to verify arrival in.")
    ]
    assert not MailLog.objects.exists()
    viewer = make_user("viewer", "v@example.com", perms=("mailops.view_maillog",), is_staff=True)
    client.force_login(viewer)
    response = client.post(reverse("admin:mailops_mailers_verify"), {"alias": "default"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:mailops_mailers_verify")).status_code == 405
