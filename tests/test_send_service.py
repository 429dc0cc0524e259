"""The one send service: row creation, outcomes, dedupe, and crash safety."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from mailops import services
from mailops.models import InvalidTransition, MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses, from_users
from mailops.services import send_test_mail

pytestmark = pytest.mark.django_db


def test_locmem_send_logs_each_recipient_with_its_message_id(make_user) -> None:
    operator = make_user("ops", "ops@example.com")

    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com"]),
        trigger=MailTrigger.API,
        triggered_by=operator,
    )

    assert (summary.sent, summary.failed, summary.ok) == (2, 0, True)
    sent_ids = {m.extra_headers["Message-ID"] for m in mail.outbox}
    logs = list(summary.logs())
    assert {log.message_id for log in logs} == sent_ids
    assert all(log.triggered_by == operator and log.attempts == 1 for log in logs)
    assert all(log.from_email == "mailops-tests@example.com" for log in logs)


def test_duplicates_are_sent_once() -> None:
    summary = send_test_mail(
        from_addresses(["a@example.com", "A@example.com", "a@example.com"]),
        trigger=MailTrigger.API,
    )
    assert summary.sent == 1
    assert len(mail.outbox) == 1


def test_users_without_address_are_rejected_but_the_rest_are_sent(recipients_users) -> None:
    from django.contrib.auth import get_user_model

    summary = send_test_mail(
        from_users(get_user_model().objects.all()), trigger=MailTrigger.ADMIN_ACTION
    )

    assert (summary.sent, summary.rejected) == (3, 1)
    rejected = MailLog.objects.get(status=MailStatus.REJECTED)
    assert rejected.user.username == "nomail"
    assert rejected.error == "user 'nomail' has no email address"
    assert rejected.message_id == ""


def test_misconfigured_mailer_is_refused_before_any_row(settings) -> None:
    from django.core.mail import InvalidMailer

    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
    with pytest.raises(InvalidMailer, match="host"):
        send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)
    assert MailLog.objects.count() == 0


def test_unknown_trigger_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="trigger"):
        send_test_mail(from_addresses(["a@example.com"]), trigger="cron")


def test_a_crashing_delivery_task_leaves_no_row_queued(monkeypatch: Any) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in a backend")

    monkeypatch.setattr("mailops.sending.session.MailerSession.send", explode)

    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)

    log = summary.logs().get()
    assert log.status == MailStatus.FAILED
    assert "delivery task crashed (builtins.RuntimeError)" in log.error


def test_rows_are_written_in_chunks(settings, django_assert_max_num_queries) -> None:
    settings.MAILOPS = {"CHUNK_SIZE": 50, "DELIVERY_CHUNK_SIZE": 50}
    addresses = [f"user{i}@example.com" for i in range(200)]

    # 4 inserts, then per delivery chunk: select ids, claim, fetch, bulk update.
    with django_assert_max_num_queries(40):
        summary = send_test_mail(from_addresses(addresses), trigger=MailTrigger.API)

    assert summary.sent == 200


def test_status_changes_follow_the_lifecycle() -> None:
    log = MailLog(status=MailStatus.REJECTED)
    with pytest.raises(InvalidTransition):
        log.set_status(MailStatus.SENT)
    log = MailLog(status=MailStatus.SENT)
    log.set_status(MailStatus.DELIVERED)
    assert log.status == MailStatus.DELIVERED


def test_move_to_skips_rows_that_may_not_move() -> None:
    send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)
    sent = MailLog.objects.all()
    assert sent.move_to(MailStatus.QUEUED) == 0
    assert sent.move_to(MailStatus.DELIVERED) == 1
    assert MailLog.objects.get().status == MailStatus.DELIVERED


def test_unknown_mailer_lists_configured_ones() -> None:
    with pytest.raises(services.UnknownMailer, match="Configured mailers: default, outbox"):
        services.resolve_mailer("nope")
