"""How far each claimed row got, written as it happens: a dead worker costs one row per connection.

A worker claims rows a chunk at a time and writes their outcomes after the
chunk; if it dies in between, the rows stay ``sending``. To tell which of
them may go out again, each connection keeps ``MailLog.wire_state`` up to
date with one UPDATE per message, committed after the server's 354 and
before the message's final "." is sent:

* ``UNTOUCHED`` (0): claimed, never attempted: back to the queue;
* ``ON_WIRE`` (1): its data was being sent: in doubt (it may have been
  delivered), failed for review, never resent automatically;
* ``ACCEPTED`` (2): the server said 250: sent;
* ``NOT_DELIVERED`` (3): refused or dropped before the end of DATA: back to
  the queue.

The UPDATE that puts a row on the wire also records how the previous row
of the same connection ended, so it is one short statement per message, on
the sending thread's own database connection (autocommit). On PostgreSQL it
commits without waiting for the WAL flush; on SQLite it costs what a commit
costs there: little in WAL mode with ``synchronous=NORMAL`` (what the
reference project sets), an fsync in rollback-journal mode.
"""

from __future__ import annotations

import enum

from django.db import connections, router

from mailops.models import MailLog


class WireState(enum.IntEnum):
    UNTOUCHED = 0
    ON_WIRE = 1
    ACCEPTED = 2
    NOT_DELIVERED = 3


class WireLedger:
    """The statements that mark progress, built once per delivery run."""

    def __init__(self) -> None:
        self.db = router.db_for_write(MailLog)
        quote = connections[self.db].ops.quote_name
        table = quote(MailLog._meta.db_table)
        pk = quote(MailLog._meta.pk.column or "id")
        column = quote(MailLog._meta.get_field("wire_state").column or "wire_state")
        lazy_commit = ""
        if connections[self.db].vendor == "postgresql":
            # This statement's commit need not wait for the WAL flush: a killed
            # worker loses nothing committed; only a crash of PostgreSQL itself
            # could lose the last marks (set_config(..., true) lasts one transaction).
            lazy_commit = " AND set_config('synchronous_commit', 'off', true) = 'off'"
        # Raw SQL, built once from quoted model names (no user input), run on
        # the driver's cursor: the ORM's update(), even Django's cursor
        # wrapper, cost more per message than the statement itself.
        self._mark = f"UPDATE {table} SET {column} = %s WHERE {pk} = %s{lazy_commit}"  # noqa: S608
        self._mark_two = (
            f"UPDATE {table} SET {column} = CASE WHEN {pk} = %s THEN %s ELSE %s END "  # noqa: S608
            f"WHERE {pk} IN (%s, %s){lazy_commit}"
        )
        if connections[self.db].vendor == "sqlite":
            # The sqlite3 module's own placeholder style.
            self._mark, self._mark_two = (
                self._mark.replace("%s", "?"),
                self._mark_two.replace("%s", "?"),
            )

    @classmethod
    def for_current_transaction(cls) -> WireLedger | None:
        """A ledger, or ``None`` where the marks would be worthless or could not be seen.

        Inside a transaction (``ATOMIC_REQUESTS``, a test) the claim is not
        committed yet: a worker killed there rolls it back anyway, and a
        sending thread's own connection could not see the rows.
        """
        connection = connections[router.db_for_write(MailLog)]
        if connection.in_atomic_block:
            return None
        return cls()

    def track(self) -> WireTrack:
        return WireTrack(self)

    def write(self, pk: int, previous: tuple[int, WireState] | None) -> None:
        """Mark ``pk`` on the wire (and how ``previous`` ended), on this thread's connection."""
        connection = connections[self.db]
        # Django's autocommit mode is the driver's: each statement commits.
        connection.ensure_connection()
        with connection.wrap_database_errors:
            cursor = connection.connection.cursor()
            try:
                if previous is None:
                    cursor.execute(self._mark, (int(WireState.ON_WIRE), pk))
                else:
                    prev_pk, state = previous
                    cursor.execute(
                        self._mark_two, (pk, int(WireState.ON_WIRE), int(state), pk, prev_pk)
                    )
            finally:
                cursor.close()


class WireTrack:
    """One connection's marks: the row going out now, and how the previous one ended."""

    def __init__(self, ledger: WireLedger) -> None:
        self.ledger = ledger
        self.previous: tuple[int, WireState] | None = None

    def mark(self, row: MailLog) -> None:
        """Commit that ``row`` is on the wire (and how the previous row ended)."""
        previous, self.previous = self.previous, None
        self.ledger.write(row.pk, previous)

    def finish(self, row: MailLog, *, delivered: bool) -> None:
        """Record with the next mark how ``row`` ended (in doubt: leave it on the wire)."""
        self.previous = (row.pk, WireState.ACCEPTED if delivered else WireState.NOT_DELIVERED)
