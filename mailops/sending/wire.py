"""How far each connection got through its chunk: a dead worker costs one row per connection.

A worker claims rows a chunk at a time and writes their outcomes after the
chunk; if it dies in between, the rows stay ``sending``. To tell which of
them may go out again, each connection keeps one
:class:`~mailops.models.SendingProgress` row per chunk up to date, with one
short UPDATE per message committed after the server's 354 and before the
message's final ".": which row is on the wire, and how the rows before it
on this connection ended ("pk" accepted, "-pk" not delivered). Recovery
(:mod:`mailops.sending.recovery`) reads it: accepted rows are sent, the
row on the wire is in doubt, every other row goes back to the queue.

The progress row is small and none of its indexed columns change, so the
update is cheap (on PostgreSQL a HOT update); marking the mail log row
itself would update each of its indexes. The statement runs on the sending
thread's own database connection (autocommit). On PostgreSQL its commit
does not wait for the WAL flush; on SQLite it costs what a commit costs
there: little in WAL mode with ``synchronous=NORMAL`` (what the reference
project sets), an fsync in rollback-journal mode.
"""

from __future__ import annotations

from django.db import connections, router

from mailops.models import MailLog, SendingProgress


class WireLedger:
    """The statement that marks progress, built once per delivery run."""

    def __init__(self) -> None:
        self.db = router.db_for_write(SendingProgress)
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(SendingProgress._meta.db_table)
        lazy_commit = ""
        if connection.vendor == "postgresql":
            # This statement's commit need not wait for the WAL flush: a killed
            # worker loses nothing committed; only a crash of PostgreSQL itself
            # could lose the last marks (set_config(..., true) lasts one transaction).
            lazy_commit = " AND set_config('synchronous_commit', 'off', true) = 'off'"
        # Raw SQL, built once from quoted model names (no user input), run on
        # the driver's cursor: the ORM's update(), even Django's cursor
        # wrapper, cost more per message than the statement itself.
        self._mark = (
            f"UPDATE {table} SET {quote('on_wire')} = %s, "  # noqa: S608
            f"{quote('done')} = {quote('done')} || %s WHERE {quote('id')} = %s{lazy_commit}"
        )
        if connection.vendor == "sqlite":
            # The sqlite3 module's own placeholder style.
            self._mark = self._mark.replace("%s", "?")

    @classmethod
    def for_current_transaction(cls) -> WireLedger | None:
        """A ledger, or ``None`` where the marks would be worthless or could not be seen.

        Inside a transaction (``ATOMIC_REQUESTS``, a test) the claim is not
        committed yet: a worker killed there rolls it back anyway, and a
        sending thread's own connection could not see the rows.
        """
        if connections[router.db_for_write(MailLog)].in_atomic_block:
            return None
        return cls()

    def track(self) -> WireTrack:
        return WireTrack(self)

    def start(self, token: str, pk: int) -> int:
        """A progress row for one connection's share of a chunk, ``pk`` on the wire; its id."""
        progress = SendingProgress.objects.using(self.db).create(token=token, on_wire=pk)
        return int(progress.pk)

    def write(self, progress_id: int, pk: int, done: str) -> None:
        """Put ``pk`` on the wire and append ``done``, on this thread's own connection."""
        connection = connections[self.db]
        # Django's autocommit mode is the driver's: the statement commits.
        connection.ensure_connection()
        with connection.wrap_database_errors:
            cursor = connection.connection.cursor()
            try:
                cursor.execute(self._mark, (pk, done, progress_id))
            finally:
                cursor.close()


class WireTrack:
    """One connection's marks: the row going out now, and how the ones before it ended."""

    def __init__(self, ledger: WireLedger) -> None:
        self.ledger = ledger
        self.token = ""
        self.progress_id: int | None = None
        # Outcomes not written yet (they go with the next mark).
        self.pending = ""

    def mark(self, row: MailLog) -> None:
        """Commit that ``row`` is on the wire (and how the rows before it ended)."""
        if self.progress_id is None or row.claimed_by != self.token:
            # A new chunk: the previous one's outcomes are in the mail log already.
            self.token = row.claimed_by
            self.progress_id = self.ledger.start(row.claimed_by, row.pk)
            self.pending = ""
            return
        self.ledger.write(self.progress_id, row.pk, self.pending)
        self.pending = ""

    def finish(self, row: MailLog, *, delivered: bool) -> None:
        """Record with the next mark how ``row`` ended (in doubt: leave it on the wire)."""
        self.pending += f"{row.pk} " if delivered else f"-{row.pk} "


def forget_progress(token: str) -> None:
    """The chunk's outcomes are written: its progress rows are no longer needed."""
    SendingProgress.objects.filter(token=token).delete()
