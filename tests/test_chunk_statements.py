"""A delivery chunk's statements reach its rows through the primary key, whatever the statistics.

PostgreSQL's statistics are gathered between batches (or never, on a new
table): they say few rows are ``queued``. A chunk's statements also name a
status, and with it the planner once read the status index, which holds the
whole batch: every chunk read every queued row (ten seconds per chunk on a
log of 200,000 rows with a batch of 50,000). These tests build that state
and read the plan PostgreSQL chooses; what the statements select is checked
on every database.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mailops.models import MailLog, MailStatus
from mailops.sending.delivery import record_outcomes
from mailops.sending.wire import WireLedger
from tests.maillog_fixtures import make_logs

pytestmark = pytest.mark.django_db

# The indexes that hold the status.
STATUS_INDEXES = ("maillog_due_idx", "maillog_status_idx", "maillog_batch_status_idx")


def add_rows(count: int, status: str, *, batch_id: uuid.UUID | None = None) -> list[int]:
    rows = make_logs(count, status=status, batch_id=batch_id or uuid.uuid4(), attempts=0)
    return sorted(int(row.pk) for row in rows)


def test_status_selections_through_primary_keys_select_the_same_rows() -> None:
    queued = add_rows(3, MailStatus.QUEUED)
    sent = add_rows(2, MailStatus.SENT)
    outside = add_rows(2, MailStatus.QUEUED)
    chunk = MailLog.objects.by_pks([*queued, *sent])

    assert sorted(chunk.queued().values_list("pk", flat=True)) == queued
    assert sorted(chunk.sent().values_list("pk", flat=True)) == sent
    assert sorted(chunk.unfinished().values_list("pk", flat=True)) == queued
    # The status machine's guard holds: sent rows cannot be claimed.
    assert chunk.claim("token-1") == 3
    assert sorted(MailLog.objects.claimed_by("token-1").values_list("pk", flat=True)) == queued
    assert list(chunk.claimed_by("token-1").filter(pk__in=sent)) == []
    assert chunk.filter(claimed_by="token-1").mark_sent(at=timezone.now()) == 3
    assert MailLog.objects.filter(pk__in=outside, status=MailStatus.QUEUED).count() == 2
    assert MailLog.objects.by_pks([]).count() == 0


def plans(statements: list[str]) -> list[str]:
    explained = []
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"EXPLAIN {sql}")
            explained.append("\n".join(row[0] for row in cursor.fetchall()))
    return explained


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_chunk_statements_read_the_primary_key_when_statistics_say_nothing_is_queued() -> None:
    add_rows(2000, MailStatus.SENT)
    with connection.cursor() as cursor:
        # What autovacuum leaves between batches: no row is queued.
        cursor.execute(f"ANALYZE {MailLog._meta.db_table}")
    batch = uuid.uuid4()
    queued = add_rows(1000, MailStatus.QUEUED, batch_id=batch)
    chunk = queued[400:500]

    with CaptureQueriesContext(connection) as captured:
        assert MailLog.objects.by_pks(chunk).claim("token-2") == 100
        rows = list(MailLog.objects.by_pks(chunk).claimed_by("token-2"))
        for index, row in enumerate(rows):
            row.set_status(MailStatus.SENT if index % 2 else MailStatus.FAILED)
        # A connection's progress row for the chunk: is its first row still ours?
        WireLedger().start("token-2", rows[0].pk)
        # The delivery run's own outcome write: successes in one UPDATE, the rest in another.
        record_outcomes(rows)
    table = f'"{MailLog._meta.db_table}"'
    explained = plans(
        [query["sql"] for query in captured.captured_queries if table in query["sql"]]
    )

    assert MailLog.objects.filter(pk__in=chunk).status_counts() == {
        MailStatus.SENT: 50,
        MailStatus.FAILED: 50,
    }
    # The claim, the read, the progress row's check, the two outcome writes.
    assert len(explained) >= 5
    for plan in explained:
        # The primary key, or on a table this small a plain scan; never a status
        # index, nor a loop that searches the chunk's keys once per entry of one.
        assert not [index for index in STATUS_INDEXES if index in plan], plan
        assert "Nested Loop" not in plan, plan
