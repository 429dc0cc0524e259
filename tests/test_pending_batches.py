"""A large queued user selection: the request records the ids, the worker writes the rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command

from mailops.models import MailLog, MailStatus, MailTrigger, PendingBatch
from mailops.sending import pending as pending_batches
from mailops.sending.progress import batch_progress
from mailops.services import send_test_mail_to_users
from mailops.tasks import deliver_batch_task
from tests.scale_fixtures import make_users

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def large_selection(settings, worker_backend) -> Any:
    """25 users with an address and 2 without, above a write-in-request limit of 10."""
    settings.MAILOPS = {
        "ASYNC_THRESHOLD": 5,
        "WRITE_IN_REQUEST_LIMIT": 10,
        "FROM_EMAILS": {"default": "ops@example.org"},
    }
    make_users(25, without_email=2)
    operator = User.objects.create_user("operator")
    return send_test_mail_to_users(
        User.objects.exclude(pk=operator.pk),
        trigger=MailTrigger.ADMIN_ACTION,
        triggered_by=operator,
        subject="Hello",
    )


def test_the_request_writes_only_the_rejected_rows_and_the_ids(
    large_selection, worker_backend
) -> None:
    summary = large_selection

    assert summary.handed_to_worker
    assert (summary.queued, summary.rejected) == (25, 2)
    assert summary.logs().status_counts() == {"rejected": 2}
    pending = PendingBatch.objects.get(pk=summary.batch_id)
    assert (pending.expected, pending.written, len(pending.user_ids)) == (25, 0, 25)
    assert (pending.subject, pending.from_email, pending.trigger) == (
        "Hello",
        "ops@example.org",
        "admin_action",
    )
    # Delivery is enqueued as for any queued batch; the rows to come count as queued.
    assert [r.kwargs["batch_id"] for r in worker_backend.results] == [str(summary.batch_id)]
    progress = batch_progress(summary.batch_id)
    assert progress is not None
    assert (progress.total, progress.queued, progress.rejected) == (27, 25, 2)
    assert not progress.finished


def test_the_batch_page_shows_a_batch_before_the_worker_wrote_a_row(
    settings, worker_backend, admin_client
) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 5, "WRITE_IN_REQUEST_LIMIT": 10}
    make_users(12)
    operator = User.objects.get(username="admin")
    summary = send_test_mail_to_users(
        User.objects.exclude(pk=operator.pk),
        trigger=MailTrigger.ADMIN_ACTION,
        triggered_by=operator,
    )
    assert not MailLog.objects.exists()

    page = admin_client.get(f"/admin/mailops/maillog/batch/{summary.batch_id}/")
    numbers = admin_client.get(f"/admin/mailops/maillog/batch/{summary.batch_id}/progress.json")

    assert page.status_code == 200
    assert page.context["progress"].queued == 12
    assert (page.context["progress"].mailer, page.context["progress"].trigger) == (
        "default",
        "admin_action",
    )
    assert numbers.json()["queued"] == 12
    assert numbers.json()["finished"] is False


def test_the_delivery_task_writes_the_rows_then_sends_each_once(large_selection) -> None:
    summary = large_selection

    counts = deliver_batch_task.call(str(summary.batch_id))

    assert counts == {"sent": 25}
    assert summary.logs().status_counts() == {"sent": 25, "rejected": 2}
    rows = list(summary.logs().filter(status=MailStatus.SENT))
    assert sorted(m.to[0] for m in mail.outbox) == sorted(row.recipient for row in rows)
    first = User.objects.get(username="user0")
    row = next(row for row in rows if row.user_id == first.pk)
    assert row.message_id == f"<{summary.batch_id.hex}.{first.pk}.mailops@example.org>"
    assert (row.subject, row.trigger, row.triggered_by.username) == (
        "Hello",
        "admin_action",
        "operator",
    )
    # Once every row is written the log tells the rest: the record goes.
    assert not PendingBatch.objects.filter(pk=summary.batch_id).exists()
    progress = batch_progress(summary.batch_id)
    assert progress is not None
    assert (progress.finished, progress.total) == (True, 27)

    # A second run (a retried task) writes and sends nothing more.
    assert deliver_batch_task.call(str(summary.batch_id)) == {}
    assert MailLog.objects.filter(batch_id=summary.batch_id).count() == 27
    assert len(mail.outbox) == 25


def test_a_second_writer_never_writes_a_chunk_twice(large_selection, monkeypatch) -> None:
    batch_id = large_selection.batch_id
    started: list[bool] = []
    nested: list[int] = []
    row_template = PendingBatch.row_template

    def another_writer_gets_in(self: PendingBatch) -> MailLog:
        # Between the first writer's read and its claim of a chunk, a second
        # writer (another delivery task) writes the whole batch.
        if not started:
            started.append(True)
            nested.append(pending_batches.write_pending_rows(batch_id, chunk_size=4))
        return row_template(self)

    monkeypatch.setattr(PendingBatch, "row_template", another_writer_gets_in)

    written_by_first = pending_batches.write_pending_rows(batch_id, chunk_size=4)

    assert (nested, written_by_first) == ([25], 0)
    queued = MailLog.objects.filter(batch_id=batch_id, status=MailStatus.QUEUED)
    assert queued.count() == 25
    assert queued.values("user").distinct().count() == 25


def test_writers_take_turns_chunk_by_chunk(large_selection, monkeypatch) -> None:
    # The second writer starts after the first wrote one chunk of 4 and
    # finishes the batch; the first then finds nothing left to take.
    batch_id = large_selection.batch_id
    started: list[bool] = []
    calls: list[int] = []
    insert = pending_batches.insert_user_rows

    def insert_then_let_another_writer_in(*args: Any, **kwargs: Any) -> int:
        written = insert(*args, **kwargs)
        if not started:
            started.append(True)
            calls.append(pending_batches.write_pending_rows(batch_id, chunk_size=4))
        return written

    monkeypatch.setattr(pending_batches, "insert_user_rows", insert_then_let_another_writer_in)

    first = pending_batches.write_pending_rows(batch_id, chunk_size=4)

    assert (first, calls) == (4, [21])
    queued = MailLog.objects.filter(batch_id=batch_id, status=MailStatus.QUEUED)
    assert queued.values("user").distinct().count() == queued.count() == 25


def test_a_deleted_user_gets_no_row_and_the_batch_still_finishes(large_selection) -> None:
    User.objects.filter(username__in=["user3", "user4"]).delete()

    deliver_batch_task.call(str(large_selection.batch_id))

    assert large_selection.logs().status_counts() == {"sent": 23, "rejected": 2}
    progress = batch_progress(large_selection.batch_id)
    assert progress is not None
    assert progress.finished


def test_mailops_deliver_finishes_a_batch_no_worker_wrote(large_selection, capsys) -> None:
    # The task was lost (e.g. the broker went away): the cron command writes and sends.
    call_command("mailops_deliver")

    assert large_selection.logs().status_counts() == {"sent": 25, "rejected": 2}
    assert "25 sent, 0 failed." in capsys.readouterr().out
    assert pending_batches.unwritten_batches() == []
