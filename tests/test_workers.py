"""Several real worker processes on one queue: every row sent exactly once, none stuck.

Workers are ``manage.py mailops_deliver`` subprocesses sharing the test
database (committed data, so PostgreSQL: SQLite's test database lives in the
test process's memory) and the test's loopback SMTP server, which counts
what actually arrived. The worker tests run on both send paths (``backend``).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from mailops.models import MailLog, MailStatus, MailTrigger, SendingProgress
from mailops.recipients import from_addresses
from mailops.sending.recovery import recover_stale_sending, stale_sending
from mailops.sending.wire import encode_outcome
from mailops.services import send_test_mail
from tests.scale_fixtures import use_server
from tests.worker_processes import ROOT, shared_database, worker_env


def start_worker(server: Any, *, backend: str, mailops: dict[str, Any] | None = None) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "django", "mailops_deliver"],
        cwd=ROOT,
        env=worker_env(server, backend=backend, mailops=mailops),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def queue_batch(count: int) -> Any:
    return send_test_mail(
        from_addresses([f"user{i}@example.com" for i in range(count)]),
        trigger=MailTrigger.API,
        queue=True,
    )


@shared_database
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_every_row_exactly_once(
    settings, worker_backend, plain_smtp, backend
):
    summary = queue_batch(300)
    # Slow enough that the workers' runs overlap; small chunks make them interleave.
    mailops = {"DELIVERY_CHUNK_SIZE": 5, "THROTTLE": {"default": {"rate": 150}}}

    workers = [start_worker(plain_smtp, backend=backend, mailops=mailops) for _ in range(4)]
    outputs = [worker.communicate(timeout=180) for worker in workers]

    assert [worker.returncode for worker in workers] == [0] * 4, outputs
    received = Counter(message.message_id for message in plain_smtp.messages)
    assert len(received) == 300
    assert set(received.values()) == {1}, "a message was delivered twice"
    rows = list(summary.logs())
    assert {(row.status, row.attempts) for row in rows} == {(MailStatus.SENT, 1)}
    assert set(received) == {row.message_id for row in rows}
    sent_per_worker = [int(out.split(" sent")[0]) for out, _ in outputs]
    assert sum(sent_per_worker) == 300
    assert sum(1 for n in sent_per_worker if n) >= 2, f"no overlap: {sent_per_worker}"


@shared_database
@pytest.mark.django_db(transaction=True)
def test_killed_worker_costs_at_most_the_row_on_the_wire(
    settings, worker_backend, plain_smtp, backend
):
    summary = queue_batch(60)
    mailops = {"DELIVERY_CHUNK_SIZE": 10, "THROTTLE": {"default": {"rate": 20}}}
    worker = start_worker(plain_smtp, backend=backend, mailops=mailops)
    try:
        plain_smtp.wait_for_messages(15, timeout=120)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=5)
    in_flight = set(summary.logs().filter(status=MailStatus.SENDING).values_list("pk", flat=True))
    # The chunk being sent; with a rate limit, nothing is claimed ahead (bookkeeping).
    assert 0 < len(in_flight) <= 10

    # Within the lease, a live worker might own them: recovery leaves them alone.
    assert recover_stale_sending(lease=600).total == 0
    time.sleep(1.1)
    use_server(settings, plain_smtp)
    out = StringIO()
    call_command("mailops_deliver", "--recover", "--lease", "1", stdout=out)

    assert f"{len(in_flight)} rows stuck in 'sending':" in out.getvalue()
    assert not stale_sending(lease=0).exists()
    rows = {row.pk: row for row in summary.logs()}
    doubt = {pk for pk, row in rows.items() if row.status == MailStatus.FAILED}
    # One connection: at most its row on the wire is in doubt, the others went out.
    assert len(doubt) <= 1
    assert all(rows[pk].in_doubt and "in doubt" in rows[pk].error for pk in doubt)
    sent = {row.message_id for row in rows.values() if row.status == MailStatus.SENT}
    assert len(sent) == 60 - len(doubt)
    received = Counter(message.message_id for message in plain_smtp.messages)
    assert set(received.values()) == {1}, "a message was delivered twice"
    assert sent <= set(received)
    assert set(received) - sent <= {rows[pk].message_id for pk in doubt}


@pytest.mark.django_db
def test_recovery_can_requeue_on_request(settings) -> None:
    summary = queue_batch(2)
    # Both were on the wire (two connections) when their worker died: in
    # doubt, unless asked to requeue.
    summary.logs().update(status=MailStatus.SENDING, claimed_by="dead-worker-claim")
    for row in summary.logs():
        SendingProgress.objects.create(token="dead-worker-claim", on_wire=row.pk)
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")

    out = StringIO()
    call_command("mailops_deliver", "--recover", "--requeue-stale", stdout=out)

    assert "2 rows stuck in 'sending': 2 requeued, 0 sent, 0 in doubt" in out.getvalue()
    assert "2 sent, 0 failed" in out.getvalue()
    assert set(summary.logs().values_list("status", flat=True)) == {MailStatus.SENT}
    assert not SendingProgress.objects.exists()


@pytest.mark.django_db
def test_recovery_settles_each_row_by_how_far_it_got() -> None:
    summary = queue_batch(5)
    a, b, c, d, e = summary.logs().order_by("pk")
    summary.logs().update(status=MailStatus.SENDING, claimed_by="dead", attempts=1)
    # One connection: a accepted, b refused, c on the wire; d and e never attempted.
    SendingProgress.objects.create(
        token="dead",
        on_wire=c.pk,
        done=encode_outcome(a.pk, delivered=True) + encode_outcome(b.pk, delivered=False),
    )
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")

    recovered = recover_stale_sending()

    assert (recovered.sent, recovered.in_doubt, recovered.requeued) == (1, 1, 3)
    rows = {row.pk: row for row in summary.logs()}
    assert rows[a.pk].status == MailStatus.SENT
    assert (rows[b.pk].status, rows[b.pk].attempts) == (MailStatus.QUEUED, 1)
    assert (rows[c.pk].status, rows[c.pk].in_doubt) == (MailStatus.FAILED, True)
    assert rows[c.pk].error.startswith("in doubt: ")
    assert {(rows[pk].status, rows[pk].attempts) for pk in (d.pk, e.pk)} == {(MailStatus.QUEUED, 0)}
    assert not SendingProgress.objects.exists()


@pytest.mark.django_db
def test_an_accepted_row_beats_a_stale_on_the_wire_from_a_connection_that_died() -> None:
    summary = queue_batch(2)
    a, b = summary.logs().order_by("pk")
    summary.logs().update(status=MailStatus.SENDING, claimed_by="dead", attempts=1)
    # Connection 1 marked a on the wire, then died at MAIL; connection 2 sent a
    # (accepted) and had b on the wire when the worker was killed.
    SendingProgress.objects.create(token="dead", on_wire=a.pk, done="")
    SendingProgress.objects.create(
        token="dead", on_wire=b.pk, done=encode_outcome(a.pk, delivered=True)
    )
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")

    recovered = recover_stale_sending()

    assert (recovered.sent, recovered.in_doubt, recovered.requeued) == (1, 1, 0)
    rows = {row.pk: row for row in summary.logs()}
    assert rows[a.pk].status == MailStatus.SENT
    assert (rows[b.pk].status, rows[b.pk].in_doubt) == (MailStatus.FAILED, True)


@pytest.mark.django_db
def test_recovering_one_batch_settles_every_row_of_its_claims() -> None:
    # A run over every batch claimed rows of two batches in one chunk, then died.
    x1, *_ = queue_batch(1).logs()
    y1, y2 = queue_batch(2).logs().order_by("pk")
    MailLog.objects.update(status=MailStatus.SENDING, claimed_by="dead", attempts=1)
    SendingProgress.objects.create(
        token="dead",
        on_wire=y2.pk,
        done=encode_outcome(x1.pk, delivered=True) + encode_outcome(y1.pk, delivered=True),
    )
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")

    # The watch task of batch x, say: the marks of y's rows must not be lost.
    recovered = recover_stale_sending(batch_id=x1.batch_id)

    assert (recovered.sent, recovered.in_doubt, recovered.requeued) == (2, 1, 0)
    assert MailLog.objects.get(pk=y1.pk).status == MailStatus.SENT
    assert MailLog.objects.get(pk=y2.pk).in_doubt
    assert not MailLog.objects.sending().exists()
