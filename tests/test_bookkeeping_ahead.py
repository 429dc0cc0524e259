"""Claiming one chunk ahead, and progress marks on a connection of their own (PostgreSQL).

These need committed rows (another thread's connection must see them), so
they use ``transaction=True``. On PostgreSQL they go through the
bookkeeping thread and the mark connection; on SQLite, which has neither,
the same outcomes must come from the plain path.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import connection

from mailops.models import MailLog, MailStatus, MailTrigger, SendingProgress
from mailops.recipients import from_addresses
from mailops.sending import wire
from mailops.sending.bookkeeping import AheadBookkeeping
from mailops.services import send_test_mail
from tests.faulty_smtp import FaultySMTPServer
from tests.scale_fixtures import SMTP_BACKEND

pytestmark = pytest.mark.django_db(transaction=True)


def test_claiming_ahead_is_for_a_database_server_of_its_own() -> None:
    # SQLite's one writer at a time would make the thread and the marks wait for each other.
    assert AheadBookkeeping.useful() is (connection.vendor != "sqlite")


def use(settings: Any, options: dict[str, Any], *, chunk: int = 10) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": options},
    }
    settings.MAILOPS = {**settings.MAILOPS, "DELIVERY_CHUNK_SIZE": chunk, "ASYNC_THRESHOLD": 10**6}


def addresses(count: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(count)]


def test_every_row_claimed_ahead_is_sent_once(settings: Any, faulty_smtp: FaultySMTPServer) -> None:
    use(settings, faulty_smtp.options())
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
    # Outcomes are written a chunk behind; the last report still sees them all.
    assert seen[-1] == 45
    assert seen == sorted(seen)


def test_a_dead_mailer_gives_the_chunk_claimed_ahead_back_and_fails_it_once(
    settings: Any, closed_port: int
) -> None:
    use(settings, {"host": "127.0.0.1", "port": closed_port, "timeout": 2})

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
def test_a_lost_mark_connection_fails_one_row_unsent_and_the_rest_go_out(
    settings: Any, monkeypatch: pytest.MonkeyPatch, faulty_smtp: FaultySMTPServer
) -> None:
    use(settings, faulty_smtp.options())
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
    failed = [address for address, row in rows.items() if row.status == MailStatus.FAILED]
    # The fourth message's mark (the chunk's first row starts the progress row) failed.
    assert failed == ["user3@example.com"]
    assert "could not record progress before sending" in rows[failed[0]].error
    assert "user3@example.com" not in faulty_smtp.deliveries
    assert faulty_smtp.deliveries == Counter(
        {address: 1 for address in addresses(8) if address != "user3@example.com"}
    )
    assert not SendingProgress.objects.exists()
    # The lost mark carried how the message before it ended: the next one carries it again.
    later = " ".join(done for _on_wire, done, _progress in marks[3:]).split()
    assert str(rows["user2@example.com"].pk) in later
    assert f"-{rows['user3@example.com'].pk}" in later
