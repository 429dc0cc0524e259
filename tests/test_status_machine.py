"""The one status machine, and the rules that are written once: Message-IDs, unknown mailers."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from mailops.exceptions import UnknownMailer
from mailops.mailers.connection import verify_connection
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.sending.composition import message_id_domain
from mailops.sending.pending import write_pending_rows
from mailops.services import send_test_mail_to_users

pytestmark = pytest.mark.django_db


def make_row(status: str, **fields) -> MailLog:
    return MailLog.objects.create(
        status=status,
        recipient="a@example.com",
        mailer="default",
        trigger=MailTrigger.API,
        **fields,
    )


def test_claim_moves_only_queued_rows_and_counts_an_attempt() -> None:
    queued, sent = make_row(MailStatus.QUEUED), make_row(MailStatus.SENT)

    moved = MailLog.objects.filter(pk__in=[queued.pk, sent.pk]).claim("token-1")

    assert moved == 1
    queued.refresh_from_db()
    sent.refresh_from_db()
    assert (queued.status, queued.claimed_by, queued.attempts) == ("sending", "token-1", 1)
    assert sent.status == MailStatus.SENT
    assert list(MailLog.objects.claimed_by("token-1")) == [queued]


def test_mark_sent_and_settle_leave_rows_that_are_no_longer_sending() -> None:
    sending = make_row(MailStatus.SENDING, error="old")
    requeued_meanwhile = make_row(MailStatus.QUEUED)
    now = timezone.now()

    assert MailLog.objects.filter(pk__in=[sending.pk, requeued_meanwhile.pk]).mark_sent(at=now) == 1
    sending.refresh_from_db()
    assert (sending.status, sending.error, sending.sent_at) == ("sent", "", now)

    # An outcome computed in memory for a row another run already settled is not written.
    requeued_meanwhile.status, requeued_meanwhile.error = MailStatus.FAILED, "late"
    assert MailLog.objects.settle([requeued_meanwhile]) == 0
    requeued_meanwhile.refresh_from_db()
    assert (requeued_meanwhile.status, requeued_meanwhile.error) == ("queued", "")


def test_fail_and_requeue_follow_the_allowed_transitions() -> None:
    queued, delivered = make_row(MailStatus.QUEUED), make_row(MailStatus.DELIVERED)
    rows = MailLog.objects.filter(pk__in=[queued.pk, delivered.pk])

    assert rows.fail("mailer down", smtp_code=421, attempt=True) == 1
    queued.refresh_from_db()
    assert (queued.status, queued.error, queued.smtp_code, queued.attempts) == (
        "failed",
        "mailer down",
        421,
        1,
    )
    assert rows.requeue("try again") == 1
    queued.refresh_from_db()
    delivered.refresh_from_db()
    assert (queued.status, queued.error, queued.next_attempt_at) == ("queued", "try again", None)
    assert delivered.status == MailStatus.DELIVERED


def test_message_id_domain_reads_the_address_inside_a_display_name() -> None:
    assert message_id_domain("Mail Ops <ops@example.org>") == "example.org"
    assert message_id_domain("ops@example.org") == "example.org"
    assert message_id_domain("") == "mailops.invalid"


@pytest.mark.parametrize("in_worker", [False, True])
def test_user_rows_get_the_same_message_id_in_the_request_and_in_the_worker(
    settings, in_worker: bool
) -> None:
    settings.MAILOPS = {"FROM_EMAILS": {"default": "Mail Ops <ops@example.org>"}}
    if in_worker:
        settings.MAILOPS["WRITE_IN_REQUEST_LIMIT"] = 0
        settings.MAILOPS["ASYNC_THRESHOLD"] = 0
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    user = get_user_model().objects.create_user("erin", "erin@example.com")

    summary = send_test_mail_to_users(
        get_user_model().objects.filter(pk=user.pk), trigger=MailTrigger.API, queue=in_worker
    )
    if in_worker:
        assert MailLog.objects.count() == 0  # the worker writes the rows
        write_pending_rows(summary.batch_id)

    row = MailLog.objects.get()
    assert row.message_id == f"<{uuid.UUID(str(row.batch_id)).hex}.{user.pk}.mailops@example.org>"


def test_an_unknown_mailer_names_the_configured_ones_wherever_it_is_raised() -> None:
    with pytest.raises(UnknownMailer, match="Configured mailers: default, outbox"):
        verify_connection("nope")


@pytest.mark.parametrize("confirmed", [False, True])
def test_both_steps_of_resend_check_the_permission(make_user, confirmed: bool) -> None:
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied
    from django.test import RequestFactory

    from mailops.admin import MailLogAdmin

    row = make_row(MailStatus.FAILED)
    reader = make_user("reader", perms=("mailops.view_maillog",), is_staff=True)
    request = RequestFactory().post("/", {"post": "yes"} if confirmed else {})
    request.user = reader

    with pytest.raises(PermissionDenied):
        MailLogAdmin(MailLog, admin.site).resend(request, MailLog.objects.filter(pk=row.pk))
    assert MailLog.objects.count() == 1
