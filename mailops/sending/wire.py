"""How far each connection got through its chunk: a dead worker costs one row per connection.

A worker claims rows a chunk at a time and writes their outcomes after the
chunk; if it dies in between, the rows stay ``sending``. To tell which of
them may go out again, each connection keeps one
:class:`~mailops.models.SendingProgress` row per chunk up to date, with one
short UPDATE per message, committed before the message's final ".":
which row is on the wire, and how the rows before it on this connection
ended ("pk" accepted, "-pk" not delivered). Recovery
(:mod:`mailops.sending.recovery`) reads it: accepted rows are sent, the
row on the wire is in doubt, every other row goes back to the queue.

The progress row is small and none of its indexed columns change, so the
update is cheap (on PostgreSQL a HOT update); marking the mail log row
itself would update each of its indexes. What a mark costs is its wait,
so it overlaps the SMTP round trips:

* On PostgreSQL, each sending connection has a database connection of its
  own for its marks. A mark is sent before MAIL and its result read once
  DATA is sent: the server commits it while the SMTP server answers MAIL,
  RCPT and DATA. Its commit does not wait for the WAL flush: a killed
  worker loses nothing committed; only a crash of PostgreSQL itself could
  lose the last marks.
* Elsewhere (SQLite), the mark runs on the sending thread's own
  connection once DATA is sent, while the SMTP server answers it. In WAL
  mode with ``synchronous=NORMAL`` (what the reference project sets) a
  commit costs little; in rollback-journal mode, an fsync.
"""

from __future__ import annotations

import contextlib
import select
from typing import Any, NoReturn

from django.db import DatabaseError, OperationalError, connections, router

from mailops.models import MailLog, SendingProgress


class WireLedger:
    """The statement that marks progress, built once per delivery run."""

    def __init__(self) -> None:
        self.db = router.db_for_write(SendingProgress)
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(SendingProgress._meta.db_table)
        self.separate_connection = connection.vendor == "postgresql" and _has_psycopg3()
        lazy_commit = ""
        if connection.vendor == "postgresql":
            # set_config(..., true) lasts this statement's own transaction: a
            # pooled connection is handed back as it came.
            lazy_commit = " AND set_config('synchronous_commit', 'off', true) = 'off'"
        # Raw SQL, built once from quoted model names (no user input), run on
        # the driver: the ORM's update(), even Django's cursor wrapper, cost
        # more per message than the statement itself.
        self.statement = (
            f"UPDATE {table} SET {quote('on_wire')} = %s, "  # noqa: S608
            f"{quote('done')} = {quote('done')} || %s WHERE {quote('id')} = %s{lazy_commit}"
        )

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
        marks: Marks = (
            SeparateConnection(self) if self.separate_connection else SameConnection(self)
        )
        return WireTrack(self, marks)

    def start(self, token: str, pk: int) -> int:
        """A progress row for one connection's share of a chunk, ``pk`` on the wire; its id."""
        progress = SendingProgress.objects.using(self.db).create(token=token, on_wire=pk)
        return int(progress.pk)


class Marks:
    """Where and when one connection's marks are written: sent, confirmed, settled."""

    def send(self, params: tuple[int, str, int]) -> None:
        """Start writing ``(on_wire, done, progress id)``."""
        raise NotImplementedError

    def confirm(self) -> None:
        """Return once the mark is committed; raise ``DatabaseError`` if it cannot be."""
        raise NotImplementedError

    def settle(self) -> bool:
        """After the transaction, whatever happened: ``True`` if the mark was committed."""
        raise NotImplementedError

    def close(self) -> None:
        """Nothing more to write."""


class SameConnection(Marks):
    """The statement on the sending thread's own connection (autocommit), run at confirm."""

    def __init__(self, ledger: WireLedger) -> None:
        self.db = ledger.db
        self.statement = ledger.statement
        if connections[self.db].vendor == "sqlite":
            # The sqlite3 module's own placeholder style.
            self.statement = self.statement.replace("%s", "?")
        self.params: tuple[int, str, int] | None = None
        self.written = False

    def send(self, params: tuple[int, str, int]) -> None:
        self.params = params
        self.written = False

    def confirm(self) -> None:
        if self.params is None:
            return
        params, self.params = self.params, None
        connection = connections[self.db]
        # Django's autocommit mode is the driver's: the statement commits.
        connection.ensure_connection()
        with connection.wrap_database_errors:
            cursor = connection.connection.cursor()
            try:
                cursor.execute(self.statement, params)
            finally:
                cursor.close()
        self.written = True

    def settle(self) -> bool:
        self.params = None
        written, self.written = self.written, False
        return written


class SeparateConnection(Marks):
    """PostgreSQL: the statement sent on a connection of its own, its result read at confirm.

    The statement goes out through libpq's asynchronous calls (``psycopg.pq``)
    so that nothing waits for it until the message's end is near. The
    connection is Django's, opened from the same settings (a pool included),
    and left idle between marks.
    """

    def __init__(self, ledger: WireLedger) -> None:
        from psycopg import Error, pq

        self.db = ledger.db
        # libpq's own placeholders.
        statement = ledger.statement.replace("%s", "$1", 1).replace("%s", "$2", 1)
        self.statement = statement.replace("%s", "$3", 1).encode()
        self.wrapper: Any = None
        self.pgconn: Any = None
        self.state = ""  # "" nothing sent, "sent", "written", "failed"
        self._driver_error = Error
        self._ok = (pq.ExecStatus.COMMAND_OK, pq.ConnStatus.OK)

    def _connect(self) -> Any:
        self.wrapper = connections.create_connection(self.db)
        self.wrapper.ensure_connection()
        self.pgconn = self.wrapper.connection.pgconn
        return self.pgconn

    def send(self, params: tuple[int, str, int]) -> None:
        # Once per message: straight to libpq, Django's wrappers only on the way to an error.
        self.state = "failed"
        on_wire, done, progress_id = params
        try:
            pgconn = self.pgconn or self._connect()
            pgconn.send_query_params(
                self.statement, [b"%d" % on_wire, done.encode(), b"%d" % progress_id]
            )
            while pgconn.flush():
                _wait(pgconn.socket, writable=True)
        except self._driver_error as error:
            self._fail(str(error))
        self.state = "sent"

    def confirm(self) -> None:
        if self.state != "sent":
            return
        self.state = "failed"
        try:
            error = self._result()
        except self._driver_error as driver_error:
            error = str(driver_error)
        if error:
            self._fail(error)
        self.state = "written"

    def _fail(self, error: str) -> NoReturn:
        self._drop()
        raise OperationalError(f"recording progress failed: {error.strip()}")

    def _result(self) -> str:
        """Wait for the statement's result; its error message, or ``""``."""
        pgconn = self.pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, writable=False)
            pgconn.consume_input()
        command_ok, connection_ok = self._ok
        error = ""
        while (result := pgconn.get_result()) is not None:
            if result.status != command_ok:
                error = (result.error_message or b"").decode(errors="replace") or "no result"
        return error or ("" if pgconn.status == connection_ok else "connection lost")

    def settle(self) -> bool:
        # Its result must be read before the connection carries anything else;
        # a mark that failed is simply not written (the caller knows by now).
        with contextlib.suppress(DatabaseError):
            self.confirm()
        written = self.state == "written"
        self.state = ""
        return written

    def _drop(self) -> None:
        """A connection in an unknown state is not used again (the next mark opens one)."""
        wrapper, self.wrapper, self.pgconn = self.wrapper, None, None
        if wrapper is not None:
            try:
                wrapper.close()
            except DatabaseError:
                # It is broken already; closing it changes nothing.
                return

    def close(self) -> None:
        self.settle()
        self._drop()


def _wait(fd: int, *, writable: bool) -> None:
    poll = select.poll()
    poll.register(fd, select.POLLOUT if writable else select.POLLIN)
    poll.poll()


def _has_psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


class WireTrack:
    """One connection's marks: the row going out now, and how the ones before it ended."""

    def __init__(self, ledger: WireLedger, marks: Marks) -> None:
        self.ledger = ledger
        self.marks = marks
        self.token = ""
        self.progress_id: int | None = None
        # Outcomes not written yet (they go with the next mark).
        self.pending = ""
        # Outcomes in the mark being written.
        self.sending = ""

    def begin(self, row: MailLog) -> None:
        """Start marking ``row`` as on the wire; :meth:`confirm` before its final "."."""
        if self.progress_id is None or row.claimed_by != self.token:
            # A new chunk: the previous one's outcomes are in the mail log already.
            self.progress_id = self.ledger.start(row.claimed_by, row.pk)
            self.token = row.claimed_by
            self.pending = ""
            return
        self.sending, self.pending = self.pending, ""
        self.marks.send((row.pk, self.sending, self.progress_id))

    def confirm(self) -> None:
        """The mark is committed (raises ``DatabaseError`` if it cannot be)."""
        self.marks.confirm()

    def settle(self) -> None:
        """After the transaction: outcomes whose mark was not written go with the next one."""
        if not self.marks.settle():
            self.pending = self.sending + self.pending
        self.sending = ""

    def mark(self, row: MailLog) -> None:
        """Commit now that ``row`` is on the wire."""
        self.begin(row)
        try:
            self.confirm()
        finally:
            self.settle()

    def finish(self, row: MailLog, *, delivered: bool) -> None:
        """Record with the next mark how ``row`` ended (in doubt: leave it on the wire)."""
        self.pending += f"{row.pk} " if delivered else f"-{row.pk} "

    def close(self) -> None:
        self.marks.close()


def forget_progress(token: str) -> None:
    """The chunk's outcomes are written: its progress rows are no longer needed."""
    SendingProgress.objects.filter(token=token).delete()
