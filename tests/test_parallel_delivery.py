"""Parallel connections per mailer (``DELIVERY_CONCURRENCY``): each row sent once, logged alone.

The SMTP cases run on both send paths (``backend``); locmem is a third.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core import mail
from django.core.mail import mailers

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending.chunk_sender import ChunkSender
from mailops.sending.delivery import claim, record_outcomes
from mailops.sending.session import MailerSession
from mailops.sending.throttle import RateLimiter
from mailops.services import send_test_mail
from tests.scale_fixtures import use_server

pytestmark = pytest.mark.django_db


def test_parallel_connections_send_every_row_once_with_its_own_message_id(
    settings, plain_smtp, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 3, "DELIVERY_CHUNK_SIZE": 10}
    addresses = [f"user{i}@example.com" for i in range(40)]

    summary = send_test_mail(from_addresses(addresses), trigger=MailTrigger.API)

    assert summary.counts == {"sent": 40}
    assert plain_smtp.connections == 3
    received = {m.rcpt_tos[0]: m for m in plain_smtp.messages}
    assert len(plain_smtp.messages) == len(received) == 40
    rows = {row.recipient: row for row in summary.logs()}
    assert set(received) == set(rows) == set(addresses)
    for address, row in rows.items():
        assert received[address].message["Message-ID"] == row.message_id
        assert received[address].message["To"] == address
        assert row.sent_at is not None
        assert row.attempts == 1
    assert len({row.message_id for row in rows.values()}) == 40


def test_parallel_delivery_through_a_backend_without_smtp(settings) -> None:
    # Django's locmem backend (the test settings' default) gets full messages, one per row.
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 3, "DELIVERY_CHUNK_SIZE": 7}
    addresses = [f"user{i}@example.com" for i in range(25)]

    summary = send_test_mail(from_addresses(addresses), trigger=MailTrigger.API)

    assert summary.counts == {"sent": 25}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(addresses)
    ids = {row.recipient: row.message_id for row in summary.logs()}
    assert {m.to[0]: m.extra_headers["Message-ID"] for m in mail.outbox} == ids


def test_a_connection_that_cannot_open_leaves_its_rows_to_the_others(
    settings, worker_backend, plain_smtp, closed_port, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILERS = {
        **settings.MAILERS,
        "unreachable": {
            "BACKEND": backend,
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port},
        },
    }
    addresses = [f"user{i}@example.com" for i in range(30)]
    summary = send_test_mail(from_addresses(addresses), trigger=MailTrigger.API, queue=True)
    assert summary.batch_id is not None
    rows = claim(summary.batch_id, mailer="default", limit=100)
    sender = ChunkSender("default", concurrency=2, limiter=RateLimiter(None))
    # The first connection's server went away; the second still answers.
    sender.sessions[0].backend = mailers["unreachable"]
    try:
        sender.send(rows)
    finally:
        sender.close()
    record_outcomes(rows)

    assert sender.sessions[0].dead is not None
    assert "connection refused" in sender.sessions[0].dead.reason
    assert sender.dead is None
    assert summary.logs().status_counts() == {"sent": 30}
    assert sorted(m.rcpt_tos[0] for m in plain_smtp.messages) == sorted(addresses)


def test_a_crash_in_a_sending_thread_fails_the_batch_instead_of_hanging(
    settings, monkeypatch: Any
) -> None:
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 2}

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug in a backend")

    monkeypatch.setattr("mailops.sending.session.MailerSession.send", explode)

    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com"]), trigger=MailTrigger.API
    )

    assert summary.logs().status_counts() == {"failed": 2}
    assert "delivery task crashed (builtins.RuntimeError)" in MailLog.objects.first().error


def test_rows_sent_before_a_thread_crashed_stay_sent(settings, monkeypatch: Any) -> None:
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 2, "DELIVERY_CHUNK_SIZE": 50}
    send = MailerSession.send

    def explode_on_one(self: MailerSession, row: MailLog, templates: Any) -> bool:
        if row.recipient == "user20@example.com":
            raise RuntimeError("bug in a backend")
        return send(self, row, templates)

    monkeypatch.setattr(MailerSession, "send", explode_on_one)
    addresses = [f"user{i}@example.com" for i in range(40)]

    summary = send_test_mail(from_addresses(addresses), trigger=MailTrigger.API)

    counts = summary.logs().status_counts()
    assert set(counts) == {"sent", "failed"}
    sent = set(summary.logs().filter(status="sent").values_list("recipient", flat=True))
    # What reached the server is logged as sent, each once; the rest failed with the reason.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(sent)
    assert counts["sent"] >= 20
    failed = summary.logs().filter(status="failed")
    assert {row.error for row in failed} == {
        "delivery task crashed (builtins.RuntimeError); see the server log"
    }
    assert "user20@example.com" in set(failed.values_list("recipient", flat=True))


def test_threads_sharing_a_rate_limiter_never_share_a_slot(monkeypatch: Any) -> None:
    # The clock stands still: every caller must be given its own later slot.
    from mailops.sending import throttle

    sleeps: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            sleeps.append(round(seconds, 6))

    monkeypatch.setattr(throttle.time, "monotonic", lambda: 100.0)
    monkeypatch.setattr(throttle.time, "sleep", sleep)
    limiter = RateLimiter(4)

    def send_five() -> None:
        for _ in range(5):
            limiter.wait()

    threads = [threading.Thread(target=send_five) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 20 messages at 4 per second: the first goes at once, the others 0.25 s apart.
    assert sorted(sleeps) == [round(0.25 * k, 6) for k in range(1, 20)]


def test_without_any_reachable_connection_the_chunk_fails_with_the_reason(
    settings, plain_smtp, backend
) -> None:
    use_server(settings, plain_smtp, backend=backend)
    settings.MAILOPS = {"DELIVERY_CONCURRENCY": 3}
    plain_smtp.stop()

    summary = send_test_mail(
        from_addresses(["a@example.com", "b@example.com"]), trigger=MailTrigger.API
    )

    rows = list(summary.logs())
    assert [row.status for row in rows] == [MailStatus.FAILED, MailStatus.FAILED]
    assert all("connection refused" in row.error for row in rows)
