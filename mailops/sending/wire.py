"""How far each claimed row got, written as it happens: a dead worker costs one row per connection.

A worker claims rows a chunk at a time and writes their outcomes after the
chunk; if it dies in between, the rows stay ``sending``. To tell which of
them may go out again, each connection keeps ``MailLog.wire_state`` up to
date with one UPDATE per message, committed before the message's final
"." is sent:

* ``UNTOUCHED`` (0): claimed, never attempted: back to the queue;
* ``ON_WIRE`` (1): its transaction had started: in doubt (it may have been
  delivered), failed for review, never resent automatically;
* ``ACCEPTED`` (2): the server said 250: sent;
* ``NOT_DELIVERED`` (3): refused or dropped before the end of DATA: back to
  the queue.

The UPDATE that puts a row on the wire also records the previous row's
state, so it is one statement per message. It runs in a thread of its own
(its own database connection, autocommit) and overlaps the MAIL, RCPT and
DATA round trips; the sender waits for it only before the final ".".
"""

from __future__ import annotations

import enum
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connections, router

from mailops.models import MailLog


class WireState(enum.IntEnum):
    UNTOUCHED = 0
    ON_WIRE = 1
    ACCEPTED = 2
    NOT_DELIVERED = 3


class WireLedger:
    """The one thread that writes every connection's progress marks (in order)."""

    def __init__(self) -> None:
        self.db = router.db_for_write(MailLog)
        quote = connections[self.db].ops.quote_name
        table = quote(MailLog._meta.db_table)
        pk = quote(MailLog._meta.pk.column or "id")
        column = quote(MailLog._meta.get_field("wire_state").column or "wire_state")
        # Raw SQL, built once from quoted model names (no user input): the
        # ORM's update() costs more per message than the statement itself.
        lazy_commit = ""
        if connections[self.db].vendor == "postgresql":
            # This statement's commit need not wait for the WAL flush: a killed
            # worker loses nothing committed; only a crash of PostgreSQL itself
            # could lose the last marks (set_config(..., true) lasts one transaction).
            lazy_commit = " AND set_config('synchronous_commit', 'off', true) = 'off'"
        self._mark = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s{lazy_commit}"  # noqa: S608
        self._mark_two = (
            f"UPDATE {table} SET {column} = CASE WHEN {pk} = %s THEN %s ELSE %s END "  # noqa: S608
            f"WHERE {pk} IN (%s, %s){lazy_commit}"
        )
        self._prepared = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailops-wire")

    @classmethod
    def for_current_transaction(cls) -> WireLedger | None:
        """A ledger, or ``None`` where another connection could not see the claim.

        Inside a transaction (``ATOMIC_REQUESTS``, a test) the claim is not
        committed yet, and a worker killed there rolls it back anyway.
        """
        connection = connections[router.db_for_write(MailLog)]
        in_memory = getattr(connection, "is_in_memory_db", lambda: False)()
        if connection.in_atomic_block or (in_memory and connection.vendor == "sqlite"):
            return None
        return cls()

    def track(self) -> WireTrack:
        return WireTrack(self)

    def submit(self, pk: int, previous: tuple[int, WireState] | None) -> Future[None]:
        return self._pool.submit(self._write, pk, previous)

    def _write(self, pk: int, previous: tuple[int, WireState] | None) -> None:
        with connections[self.db].cursor() as cursor:
            if not self._prepared:
                self._prepare(cursor)
            if previous is None:
                cursor.execute(self._mark, [int(WireState.ON_WIRE), pk])
            else:
                prev_pk, state = previous
                cursor.execute(
                    self._mark_two, [pk, int(WireState.ON_WIRE), int(state), pk, prev_pk]
                )

    def _prepare(self, cursor: Any) -> None:
        """On SQLite in WAL mode, this thread's connection commits without fsync.

        Safe in WAL mode (no corruption, a power cut may lose the last
        commits); in rollback-journal mode each mark costs a full sync.
        """
        self._prepared = True
        if connections[self.db].vendor != "sqlite":
            return
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            cursor.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        # The thread's own database connection goes with it.
        self._pool.submit(connections.close_all).result()
        self._pool.shutdown(wait=True)


class WireTrack:
    """One connection's marks: the row going out now, and how the previous one ended."""

    def __init__(self, ledger: WireLedger) -> None:
        self.ledger = ledger
        self.previous: tuple[int, WireState] | None = None

    def start(self, row: MailLog) -> Future[None]:
        """Mark ``row`` on the wire (and settle the previous row); wait before its final "."."""
        previous, self.previous = self.previous, None
        return self.ledger.submit(row.pk, previous)

    def finish(self, row: MailLog, *, delivered: bool) -> None:
        """Record with the next mark how ``row`` ended (in doubt: leave it on the wire)."""
        self.previous = (row.pk, WireState.ACCEPTED if delivered else WireState.NOT_DELIVERED)
