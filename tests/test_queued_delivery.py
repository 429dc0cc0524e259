"""Large batches are queued for a task worker; small ones still answer with outcomes.

What a failure means (retried with backoff, final at once, deferred) is
tested on both send paths (``backend``).
"""

from __future__ import annotations

import email.policy
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending.composition import build_message
from mailops.sending.delivery import deliver_batch
from mailops.services import plan_delivery, send_test_mail, send_test_mail_to_users
from mailops.tasks import deliver_batch_task
from tests.scale_fixtures import make_users, use_server

pytestmark = pytest.mark.django_db

User = get_user_model()


def enqueued_batches(backend: Any) -> list[str]:
    return [result.kwargs["batch_id"] for result in backend.results]


def test_small_batch_is_delivered_at_once_even_with_a_worker(worker_backend) -> None:
    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)

    assert (summary.sent, summary.handed_to_worker) == (1, False)
    assert len(mail.outbox) == 1
    assert worker_backend.results == []


def test_batch_above_threshold_is_queued_for_the_worker(settings, worker_backend) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 2}

    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com", "c@example.com", "bad"]),
        trigger=MailTrigger.API,
    )

    assert summary.handed_to_worker
    assert (summary.queued, summary.sent, summary.rejected) == (3, 0, 1)
    assert mail.outbox == []
    assert enqueued_batches(worker_backend) == [str(summary.batch_id)]
    assert summary.logs().status_counts() == {"queued": 3, "rejected": 1}

    # The worker's task sends them.
    assert deliver_batch_task.call(str(summary.batch_id)) == {"sent": 3}
    assert len(mail.outbox) == 3
    assert summary.logs().sent().count() == 3


def test_queue_flag_hands_even_a_small_batch_to_the_worker(worker_backend) -> None:
    summary = send_test_mail(
        from_addresses(["a@example.com"]), trigger=MailTrigger.COMMAND, queue=True
    )
    assert summary.handed_to_worker
    assert mail.outbox == []


def test_concurrency_enqueues_one_task_per_connection(settings, worker_backend) -> None:
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 3}
    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API, queue=True)
    assert enqueued_batches(worker_backend) == [str(summary.batch_id)] * 3


def test_without_a_worker_a_large_batch_is_sent_inline_and_the_plan_says_so(settings) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 2}

    plan = plan_delivery(3)
    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com", "c@example.com"]),
        trigger=MailTrigger.API,
    )

    assert (plan.queued, plan.blocks) == (False, True)
    assert "3 messages will be sent before this returns" in plan.notice()
    assert "ImmediateBackend" in plan.notice()
    assert (summary.sent, summary.handed_to_worker) == (3, False)


def test_plan_with_a_worker_says_the_batch_is_queued(settings, worker_backend) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 10}
    assert plan_delivery(5).notice() == ""
    plan = plan_delivery(100_000)
    assert (plan.queued, plan.blocks) == (True, False)
    assert plan.notice().startswith("100000 messages will be queued and sent by the task worker")


def test_user_selection_rows_are_written_by_the_database(settings, worker_backend) -> None:
    settings.MAILOPS = {"ASYNC_THRESHOLD": 5, "FROM_EMAILS": {"default": "ops@example.org"}}
    make_users(20, without_email=2)
    operator = User.objects.create_user("operator", "operator@example.com")
    before = timezone.now()

    summary = send_test_mail_to_users(
        User.objects.filter(username__startswith="user"),
        trigger=MailTrigger.ADMIN_ACTION,
        triggered_by=operator,
        subject="Hello",
    )

    assert summary.handed_to_worker
    assert (summary.queued, summary.rejected, summary.ok) == (20, 2, False)
    rows = list(summary.logs())
    queued = [row for row in rows if row.status == MailStatus.QUEUED]
    assert len(queued) == 20
    first = User.objects.get(username="user0")
    row = next(row for row in queued if row.user_id == first.pk)
    assert row.recipient == "user0@example.com"  # trimmed
    assert row.message_id == f"<{summary.batch_id.hex}.{first.pk}.mailops@example.org>"
    assert (row.subject, row.from_email, row.mailer) == ("Hello", "ops@example.org", "default")
    assert (row.trigger, row.triggered_by, row.attempts) == ("admin_action", operator, 0)
    # Written by SQL, not by the model's auto_now_add: the time is set explicitly.
    assert before <= row.created_at == row.updated_at <= timezone.now()
    assert len({row.message_id for row in queued}) == 20
    rejected = [row for row in rows if row.status == MailStatus.REJECTED]
    assert sorted(row.error for row in rejected) == [
        "user 'user-nomail0' has no email address",
        "user 'user-nomail1' has no email address",
    ]
    assert all(row.message_id == "" and row.user_id for row in rejected)

    deliver_batch_task.call(str(summary.batch_id))
    assert len(mail.outbox) == 20
    assert {m.extra_headers["Message-ID"] for m in mail.outbox} == {r.message_id for r in queued}


@pytest.mark.parametrize(("sizes", "queries"), [((30, 90), 4), ((300, 900), 5)])
def test_queueing_a_user_selection_takes_the_same_queries_whatever_its_size(
    settings, worker_backend, sizes, queries
) -> None:
    # 30 and 90 users: rows written here (a COUNT, two INSERT ... SELECT);
    # 300 and 900: above WRITE_IN_REQUEST_LIMIT, the ids are recorded for the
    # worker (a COUNT, the rejected rows, the ids, the pending batch). Both
    # ask once whether the suppression list has an active entry.
    settings.MAILOPS = {"ASYNC_THRESHOLD": 10, "WRITE_IN_REQUEST_LIMIT": 100}
    for selected in sizes:
        User.objects.all().delete()
        make_users(selected, without_email=3)
        with CaptureQueriesContext(connection) as captured:
            summary = send_test_mail_to_users(User.objects.all(), trigger=MailTrigger.ADMIN_ACTION)
        # The enqueue writes nothing here (Django's DummyBackend).
        assert len(captured) == queries, [q["sql"][:80] for q in captured]
        assert (summary.queued, summary.rejected) == (selected, 3)
        assert summary.handed_to_worker


def test_small_user_selection_is_sent_at_once(recipients_users) -> None:
    summary = send_test_mail_to_users(User.objects.all(), trigger=MailTrigger.ADMIN_ACTION)
    assert (summary.sent, summary.rejected, summary.handed_to_worker) == (3, 1, False)
    assert len(mail.outbox) == 3


def test_abort_on_rejected_stops_a_user_selection(recipients_users) -> None:
    summary = send_test_mail_to_users(
        User.objects.all(), trigger=MailTrigger.COMMAND, abort_on_rejected=True
    )
    assert summary.aborted
    assert summary.logs().status_counts() == {"rejected": 1}
    assert mail.outbox == []


def test_invalid_stored_address_fails_its_row_at_delivery(make_user) -> None:
    make_user("odd", "not-an-address")
    make_user("fine", "fine@example.com")

    summary = send_test_mail_to_users(User.objects.all(), trigger=MailTrigger.ADMIN_ACTION)

    statuses = dict(summary.logs().values_list("recipient", "status"))
    assert statuses == {"not-an-address": "failed", "fine@example.com": "sent"}
    assert "not a valid email address" in MailLog.objects.get(recipient="not-an-address").error


def test_worker_retries_a_transient_failure_with_backoff(
    settings, worker_backend, plain_smtp, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"RETRY_BACKOFF": 60, "MAX_ATTEMPTS": 3}
    plain_smtp.data_replies["a@example.com"] = "451 4.3.0 Try again later"
    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com"]), trigger=MailTrigger.API
    )

    row = MailLog.objects.get(recipient="a@example.com")
    assert (row.status, row.attempts, row.smtp_code) == (MailStatus.QUEUED, 1, 451)
    assert "Try again later" in row.error
    assert "will retry at" in row.error
    assert timedelta(seconds=55) < row.next_attempt_at - timezone.now() <= timedelta(seconds=60)
    follow_up = worker_backend.results[-1]
    assert follow_up.task.run_after == row.next_attempt_at
    assert summary.resumes_at == row.next_attempt_at
    assert (summary.sent, summary.queued) == (1, 1)

    # Not due yet: a worker run leaves it alone.
    assert deliver_batch_task.call(str(summary.batch_id)) == {}
    MailLog.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    plain_smtp.data_replies.clear()
    deliver_batch_task.call(str(summary.batch_id))

    row.refresh_from_db()
    assert (row.status, row.attempts, row.error, row.next_attempt_at) == ("sent", 2, "", None)


def test_transient_failures_stop_after_max_attempts(
    settings, worker_backend, plain_smtp, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"MAX_ATTEMPTS": 2}
    plain_smtp.data_replies["a@example.com"] = "451 4.3.0 Try again later"
    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)
    summary.logs().update(next_attempt_at=timezone.now())

    deliver_batch_task.call(str(summary.batch_id))

    row = summary.logs().get()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert row.error.endswith("(after 2 attempts)")


def test_permanent_failure_is_final_at_once(settings, worker_backend, plain_smtp, backend) -> None:
    use_server(settings, plain_smtp, backend=backend)
    plain_smtp.rejected_recipients["a@example.com"] = "550 5.1.1 No such user"

    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)

    row = summary.logs().get()
    assert (row.status, row.attempts, row.smtp_code) == ("failed", 1, 550)
    assert summary.resumes_at is None
    assert worker_backend.results == []


@pytest.mark.parametrize("concurrency", [1, 3])
def test_unreachable_server_defers_the_whole_batch(
    settings, worker_backend, plain_smtp, concurrency, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"DELIVERY_CHUNK_SIZE": 2, "DELIVERY_CONCURRENCY": concurrency}
    plain_smtp.stop()

    summary = send_test_mail(
        from_addresses([f"u{i}@example.com" for i in range(5)]), trigger=MailTrigger.API
    )

    rows = list(summary.logs())
    assert {(row.status, row.attempts) for row in rows} == {("queued", 1)}
    assert all("connection refused" in row.error for row in rows)
    assert all(row.next_attempt_at > timezone.now() for row in rows)


def test_without_a_worker_transient_failures_are_final(settings, plain_smtp, backend) -> None:
    # Nothing could retry later (ImmediateBackend cannot defer): say so now.
    use_server(settings, plain_smtp, backend=backend)
    plain_smtp.data_replies["a@example.com"] = "451 4.3.0 Try again later"

    summary = send_test_mail(from_addresses(["a@example.com"]), trigger=MailTrigger.API)

    assert summary.logs().get().status == MailStatus.FAILED


def _without_date(data: bytes) -> bytes:
    head, _, content = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"Date: ")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + content


def test_smtp_delivery_sends_the_bytes_djangos_message_would_have(settings, plain_smtp) -> None:
    # The batch's message is built once and only To / Message-ID change per row.
    use_server(settings, plain_smtp)
    addresses = ["a@example.com", "b.c+d@example.org", "e_f-g@mail.example.net"]

    # The Date header has whole seconds.
    started = timezone.now().replace(microsecond=0)
    summary = send_test_mail(
        from_addresses(addresses),
        trigger=MailTrigger.API,
        subject="Grüße " + "long subject " * 8,
        body="Zeile eins\n.leading dot\n" + "x" * 200,
    )
    finished = timezone.now()

    assert summary.sent == 3
    rows = {row.recipient: row for row in summary.logs()}
    assert sorted(m.rcpt_tos[0] for m in plain_smtp.messages) == sorted(addresses)
    for received in plain_smtp.messages:
        row = rows[received.rcpt_tos[0]]
        expected = build_message(
            to=row.recipient,
            subject=row.subject,
            body=row.body,
            from_email=row.from_email,
            message_id=row.message_id,
            mailer="default",
        ).message(policy=email.policy.SMTP)
        assert received.mail_from == row.from_email
        sent = _without_date(received.data).rstrip(b"\r\n")
        assert sent == _without_date(expected.as_bytes()).rstrip(b"\r\n")
        # Each message is dated when it was sent, as Django dates it (UTC here).
        assert started <= received.message["Date"].datetime <= finished
        assert received.message["Date"].endswith("+0000")


def test_an_address_the_template_cannot_carry_gets_the_full_build(settings, plain_smtp) -> None:
    use_server(settings, plain_smtp)

    summary = send_test_mail(
        from_addresses(["plain@example.com", "jorg@bücher.example"]), trigger=MailTrigger.API
    )

    assert summary.sent == 2
    received = {m.rcpt_tos[0]: m for m in plain_smtp.messages}
    # Django's own build encodes the international domain, as it always did.
    assert set(received) == {"plain@example.com", "jorg@xn--bcher-kva.example"}
    assert received["jorg@xn--bcher-kva.example"].message["To"] == "jorg@xn--bcher-kva.example"


@pytest.mark.parametrize("smtp", [False, True])
def test_a_chunk_of_successes_is_recorded_with_the_same_queries_whatever_its_size(
    settings, worker_backend, plain_smtp, smtp
) -> None:
    if smtp:
        use_server(settings, plain_smtp)
    counts = []
    for size in (3, 40):
        summary = send_test_mail(
            from_addresses([f"u{size}-{i}@example.com" for i in range(size)]),
            trigger=MailTrigger.API,
            queue=True,
        )
        with CaptureQueriesContext(connection) as queries:
            report = deliver_batch(summary.batch_id, chunk_size=100)
        assert report.counts == {"sent": size}
        counts.append(len(queries))
        rows = list(summary.logs())
        assert all(row.status == "sent" and row.sent_at and not row.error for row in rows)
    assert counts[0] == counts[1]


def test_rows_a_dead_mailer_leaves_back_off_by_their_attempts_like_any_failure(
    settings, worker_backend, plain_smtp, backend
) -> None:
    # One retry rule: a row on its third try waits 4x the base, as record_failure would say.
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"DELIVERY_CHUNK_SIZE": 1, "RETRY_BACKOFF": 60, "MAX_ATTEMPTS": 3}
    plain_smtp.stop()
    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com", "c@example.com"]),
        trigger=MailTrigger.API,
        queue=True,
    )
    summary.logs().filter(recipient="b@example.com").update(attempts=1)
    summary.logs().filter(recipient="c@example.com").update(attempts=2)

    started = timezone.now()
    deliver_batch(summary.batch_id, retry=True)

    rows = {row.recipient: row for row in summary.logs()}
    # a: its first try was the chunk's (claimed, refused); b waits 2x; c had its last try.
    assert (rows["a@example.com"].status, rows["a@example.com"].attempts) == ("queued", 1)
    b = rows["b@example.com"]
    assert (b.status, b.attempts) == ("queued", 2)
    assert b.next_attempt_at >= started + timedelta(seconds=120)
    c = rows["c@example.com"]
    assert (c.status, c.attempts) == ("failed", 3)
    assert c.error.endswith("(after 3 attempts)")
