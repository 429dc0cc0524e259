"""Claiming one chunk ahead, and progress marks on a connection of their own (PostgreSQL).

These need committed rows (another thread's connection must see them), so
they use ``transaction=True``. On PostgreSQL they go through the
bookkeeping thread and the mark connection; on SQLite, which has neither,
the same outcomes must come from the plain path. Sending cases run on both
send paths (``backend``); a lost mark also on a backend without SMTP (locmem).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.core import mail
from django.db import OperationalError, connection

from mailops.models import MailLog, MailStatus, MailTrigger, SendingProgress
from mailops.recipients import from_addresses
from mailops.sending import delivery, marks, wire
from mailops.sending.bookkeeping import AheadBookkeeping
from mailops.sending.delivery import DeliveryReport, deliver_batch
from mailops.sending.marks import ChunkTaken
from mailops.sending.progress import queue_progress
from mailops.sending.recovery import recover_stale_sending
from mailops.sending.strategy import Strategy
from mailops.services import send_test_mail
from tests.backends import LOCMEM
from tests.faulty_smtp import FaultySMTPServer
from tests.scale_fixtures import SMTP_BACKEND

pytestmark = pytest.mark.django_db(transaction=True)


def test_claiming_ahead_is_for_a_database_server_of_its_own() -> None:
    # SQLite's one writer at a time would make the thread and the marks wait for each other.
    strategy = Strategy.for_run()
    assert strategy.claim_ahead is (connection.vendor != "sqlite")
    assert strategy.marks_connection is (connection.vendor == "postgresql")


def ledger() -> wire.WireLedger:
    """The progress-mark ledger a delivery run on this database uses."""
    return wire.WireLedger(separate_connection=Strategy.for_run().marks_connection)


def use(
    settings: Any, options: dict[str, Any], *, chunk: int = 10, backend: str = SMTP_BACKEND
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": options},
    }
    settings.MAILOPS = {**settings.MAILOPS, "DELIVERY_CHUNK_SIZE": chunk, "ASYNC_THRESHOLD": 10**6}


def addresses(count: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(count)]


def test_every_row_claimed_ahead_is_sent_once(
    settings: Any, monkeypatch: pytest.MonkeyPatch, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp.options(), backend=backend)
    started: list[AheadBookkeeping] = []
    original_init = AheadBookkeeping.__init__

    def init(self: AheadBookkeeping, *args: Any) -> None:
        started.append(self)
        original_init(self, *args)

    monkeypatch.setattr(AheadBookkeeping, "__init__", init)
    seen: list[int] = []

    summary = send_test_mail(
        from_addresses(addresses(45)),
        trigger=MailTrigger.API,
        progress=lambda current: seen.append(current.counts.get(MailStatus.SENT, 0)),
    )

    rows = list(summary.logs())
    assert {(row.status, row.attempts) for row in rows} == {(MailStatus.SENT, 1)}
    assert faulty_smtp.deliveries == Counter({address: 1 for address in addresses(45)})
    assert not SendingProgress.objects.exists()
    assert len(started) == (0 if connection.vendor == "sqlite" else 1)
    # Outcomes are written a chunk behind; the last report still sees them all.
    assert seen[-1] == 45
    assert seen == sorted(seen)


def test_a_dead_mailer_gives_the_chunk_claimed_ahead_back_and_fails_it_once(
    settings: Any, closed_port: int, backend: str
) -> None:
    use(settings, {"host": "127.0.0.1", "port": closed_port, "timeout": 2}, backend=backend)

    summary = send_test_mail(from_addresses(addresses(25)), trigger=MailTrigger.API)

    rows = list(summary.logs())
    assert not MailLog.objects.sending().exists()
    # The first chunk was claimed, the second claimed ahead and given back,
    # then failed with the rest: one attempt each, whatever chunk it was in.
    assert {(row.status, row.attempts) for row in rows} == {(MailStatus.FAILED, 1)}
    assert all("refused" in row.error.lower() for row in rows)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the separate mark connection is PostgreSQL's"
)
def test_a_lost_mark_connection_costs_a_reconnect_not_a_message(
    settings: Any, monkeypatch: pytest.MonkeyPatch, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp.options(), backend=backend)
    original = wire.SeparateConnection.send
    marks: list[tuple[int, str, int]] = []

    def send(self: wire.SeparateConnection, params: tuple[int, str, int]) -> None:
        marks.append(params)
        if len(marks) == 3:
            # The server ends this connection (a restart, an idle timeout, an admin).
            pgconn = self.pgconn or self._connect()
            backend = pgconn.backend_pid
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [backend])
        original(self, params)

    monkeypatch.setattr(wire.SeparateConnection, "send", send)

    summary = send_test_mail(from_addresses(addresses(8)), trigger=MailTrigger.API)

    rows = {row.recipient: row for row in summary.logs()}
    # The fourth message's mark failed (the chunk's first row starts the
    # progress row): not sent then, and sent once over fresh connections.
    assert {(row.status, row.attempts) for row in rows.values()} == {(MailStatus.SENT, 1)}
    assert faulty_smtp.deliveries == Counter({address: 1 for address in addresses(8)})
    assert faulty_smtp.connections == 2
    assert not SendingProgress.objects.exists()
    # The lost mark carried how the message before it ended: the next one carries it again.
    later = " ".join(done for _on_wire, done, _progress in marks[3:]).split()
    assert str(rows["user2@example.com"].pk) in later
    assert f"-{rows['user3@example.com'].pk}" in later


def lose_a_mark(monkeypatch: pytest.MonkeyPatch, nth: int) -> list[int]:
    """The run's ``nth`` progress mark fails, as when its database connection drops.

    The list counts the marks the run wrote or tried to.
    """
    tried: list[int] = []

    def lost() -> bool:
        tried.append(len(tried) + 1)
        return len(tried) == nth

    same_confirm = marks.SameConnection.confirm

    def confirm(self: marks.SameConnection) -> None:
        if self.params is not None and lost():
            raise OperationalError("mark lost")
        same_confirm(self)

    separate_result = marks.SeparateConnection._result

    def result(self: marks.SeparateConnection) -> None:
        if lost():
            raise OperationalError("mark lost")
        separate_result(self)

    monkeypatch.setattr(marks.SameConnection, "confirm", confirm)
    monkeypatch.setattr(marks.SeparateConnection, "_result", result)
    return tried


def test_a_lost_mark_costs_a_reconnect_not_a_message(
    settings: Any, monkeypatch: pytest.MonkeyPatch, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp.options(), backend=backend)
    lose_a_mark(monkeypatch, 2)

    summary = send_test_mail(from_addresses(addresses(5)), trigger=MailTrigger.API)

    assert {(row.status, row.attempts) for row in summary.logs()} == {(MailStatus.SENT, 1)}
    assert faulty_smtp.deliveries == Counter({address: 1 for address in addresses(5)})
    assert faulty_smtp.connections == 2


def test_a_lost_mark_costs_nothing_on_a_backend_without_smtp(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The case: locmem failed the row with "OperationalError: mark lost".
    use(settings, {}, backend=LOCMEM)
    tried = lose_a_mark(monkeypatch, 2)

    summary = send_test_mail(from_addresses(addresses(5)), trigger=MailTrigger.API)

    assert {(row.status, row.attempts) for row in summary.logs()} == {(MailStatus.SENT, 1)}
    # The lost mark was tried again (the first row's is the progress row itself).
    assert len(tried) == 5
    assert sorted(message.to[0] for message in mail.outbox) == addresses(5)


def claimed_rows(count: int, token: str) -> list[MailLog]:
    summary = send_test_mail(from_addresses(addresses(count)), trigger=MailTrigger.API, queue=True)
    summary.logs().update(status=MailStatus.SENDING, claimed_by=token, attempts=1)
    return list(summary.logs().order_by("pk"))


def test_moving_to_a_new_chunk_closes_the_old_progress_row() -> None:
    # The old chunk's outcomes may still be on their way to the log (written
    # a chunk behind): its progress row must not leave its last row on the wire.
    a1, a2 = claimed_rows(2, "chunk-a")
    (b1,) = claimed_rows(1, "chunk-b")
    track = ledger().track()
    for row, delivered in ((a1, True), (a2, False)):
        track.begin(row)
        track.confirm()
        track.settle()
        track.finish(row, delivered=delivered)

    track.begin(b1)
    track.close()
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")
    recovered = recover_stale_sending()

    assert (recovered.sent, recovered.in_doubt, recovered.requeued) == (1, 1, 1)
    assert MailLog.objects.get(pk=a1.pk).status == MailStatus.SENT
    assert (MailLog.objects.get(pk=a2.pk).status, MailLog.objects.get(pk=a2.pk).in_doubt) == (
        MailStatus.QUEUED,
        False,
    )
    assert MailLog.objects.get(pk=b1.pk).in_doubt


def test_a_chunk_recovery_took_away_is_not_sent_by_the_run_that_lost_it(
    settings: Any, monkeypatch: pytest.MonkeyPatch, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp.options(), backend=backend)
    original = wire.WireTrack.begin
    begun: list[int] = []

    def begin(self: wire.WireTrack, row: MailLog) -> None:
        begun.append(row.pk)
        if len(begun) == 3:
            # This run stalled past its lease: another run's recovery takes the chunk.
            MailLog.objects.sending().update(updated_at="2000-01-01T00:00:00Z")
            recover_stale_sending()
        original(self, row)

    monkeypatch.setattr(wire.WireTrack, "begin", begin)

    summary = send_test_mail(from_addresses(addresses(5)), trigger=MailTrigger.API)

    rows = list(summary.logs().order_by("pk"))
    # Recovery settled user0 as sent and user1 (on the wire) in doubt; the
    # rest went back to the queue. The run that lost them sent none on its
    # old claim: each went out once, on a new claim (a later chunk of this
    # run), or waits in the queue (already claimed ahead: nothing left).
    assert [(row.status, row.in_doubt) for row in rows[:2]] == [
        (MailStatus.SENT, False),
        (MailStatus.FAILED, True),
    ]
    assert set(faulty_smtp.deliveries.values()) == {1}
    for row in rows[2:]:
        assert row.status in (MailStatus.SENT, MailStatus.QUEUED)
        assert faulty_smtp.deliveries[row.recipient] == (row.status == MailStatus.SENT)
        assert row.claimed_by != rows[0].claimed_by


@pytest.mark.skipif(connection.vendor != "postgresql", reason="mark connections are PostgreSQL's")
def test_parallel_connections_leave_no_database_connection_open(
    settings: Any, faulty_smtp: FaultySMTPServer
) -> None:
    use(settings, faulty_smtp.options())
    settings.MAILOPS = {**settings.MAILOPS, "DELIVERY_CONCURRENCY": 3}

    def open_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return int(cursor.fetchone()[0])

    before = open_connections()
    summary = send_test_mail(from_addresses(addresses(40)), trigger=MailTrigger.API)

    assert summary.sent == 40
    assert faulty_smtp.deliveries == Counter({address: 1 for address in addresses(40)})
    # A closed connection's server process leaves pg_stat_activity moments later.
    deadline = time.monotonic() + 5
    while open_connections() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_connections() == before


def test_a_run_reports_each_row_once_while_outcomes_are_written_behind(
    settings: Any, worker_backend: Any, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp.options(), backend=backend)
    summary = send_test_mail(from_addresses(addresses(45)), trigger=MailTrigger.API, queue=True)
    totals: list[tuple[int, int]] = []

    def progress(report: DeliveryReport) -> None:
        current = queue_progress(report.counts, summary.batch_id)
        totals.append((sum(current.counts.values()), current.counts.get(MailStatus.SENT, 0)))

    deliver_batch(summary.batch_id, chunk_size=10, progress=progress)

    # The run's own counts plus what the log still shows unfinished: never a row twice.
    assert {total for total, _sent in totals} == {45}
    assert totals[-1] == (45, 45)


def test_a_progress_report_is_exact_even_when_a_write_behind_finishes_before_it_reads(
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    worker_backend: Any,
    faulty_smtp: FaultySMTPServer,
    backend: str,
) -> None:
    # The worst timing of a busy machine, made certain: whatever outcome write
    # is on its way when a report is made finishes before the report reads
    # the log. A run that reports while a write is in flight then counts that
    # chunk in neither its own counts nor the log's unfinished rows.
    use(settings, faulty_smtp.options(), backend=backend)
    summary = send_test_mail(from_addresses(addresses(45)), trigger=MailTrigger.API, queue=True)
    writes = threading.Condition()
    started = finished = 0
    original = delivery._write_outcomes

    def write_outcomes(rows: list[MailLog]) -> None:
        nonlocal started, finished
        with writes:
            started += 1
        try:
            original(rows)
        finally:
            with writes:
                finished += 1
                writes.notify_all()

    monkeypatch.setattr(delivery, "_write_outcomes", write_outcomes)
    totals: list[int] = []
    in_flight: list[int] = []

    def progress(report: DeliveryReport) -> None:
        with writes:
            in_flight.append(started - finished)
            assert writes.wait_for(lambda: started == finished, timeout=60)
        current = queue_progress(report.counts, summary.batch_id)
        totals.append(sum(current.counts.values()))

    deliver_batch(summary.batch_id, chunk_size=10, progress=progress)

    assert set(totals) == {45}
    # A report is made only while no outcome write is on its way.
    assert set(in_flight) == {0}


def test_a_row_in_doubt_stays_in_doubt_after_the_next_mark() -> None:
    # Its reply was lost after the final "."; the connection moved on to the
    # next row before the worker died: recovery must not requeue it.
    a1, a2, a3 = claimed_rows(3, "chunk-a")
    track = ledger().track()
    for row, delivered in ((a1, None), (a2, True)):
        track.mark(row)
        track.finish(row, delivered=delivered)
    track.mark(a3)
    track.close()
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")

    recovered = recover_stale_sending()

    assert (recovered.sent, recovered.in_doubt, recovered.requeued) == (1, 2, 0)
    assert {row.pk for row in MailLog.objects.filter(in_doubt=True)} == {a1.pk, a3.pk}


def test_a_chunk_taken_before_its_first_row_goes_out_is_not_started() -> None:
    (a1,) = claimed_rows(1, "chunk-a")
    MailLog.objects.update(updated_at="2000-01-01T00:00:00Z")
    recover_stale_sending()
    track = ledger().track()

    with pytest.raises(ChunkTaken):
        track.begin(a1)

    assert track.taken(a1)
    assert not SendingProgress.objects.exists()
    assert MailLog.objects.get(pk=a1.pk).status == MailStatus.QUEUED
