"""Where and when one connection's progress marks are written (see :mod:`mailops.sending.wire`).

What a mark costs is its wait, so it overlaps the SMTP round trips:

* :class:`SeparateConnection` (PostgreSQL with psycopg 3): each sending
  connection has a database connection of its own for its marks, opened
  from the database's settings but outside any pool (it lives as long as
  the mailer connection). A mark is sent before MAIL and its result read
  once DATA is sent: the server commits it while the SMTP server answers
  MAIL, RCPT and DATA.
* :class:`SameConnection` (SQLite, psycopg2, other databases): the mark runs
  on the sending thread's own connection once DATA is sent, while the SMTP
  server answers it. In WAL mode with ``synchronous=NORMAL`` (what the
  reference project sets) a commit costs little; in rollback-journal mode,
  an fsync.

A mark that updates no row means the progress row is gone: recovery took
the chunk (its lease ran out) and its rows may be sent by another worker,
so the message must not go out: :class:`ChunkTaken`.
"""

from __future__ import annotations

import contextlib
import logging
import select
from typing import Any, NoReturn

from django.db import OperationalError, connections

logger = logging.getLogger("mailops.delivery")

# Longest wait for the database's answer to one mark (seconds); a mark is one
# small UPDATE, so this is a database or network that has stopped answering.
MARK_TIMEOUT = 60.0
CONNECT_TIMEOUT = 10

Params = tuple[int, str, int]


class ChunkTaken(OperationalError):
    """The chunk's progress row is gone: recovery gave its rows to another run."""


class Marks:
    """One connection's marks: sent, confirmed before the end of DATA, settled after."""

    def send(self, params: Params) -> None:
        """Start writing ``(on_wire, done, progress id)``."""
        raise NotImplementedError

    def confirm(self) -> None:
        """Return once the mark is committed; raise ``DatabaseError`` if it cannot be."""
        raise NotImplementedError

    def settle(self) -> bool:
        """After the transaction, whatever happened: ``True`` if the mark was committed."""
        raise NotImplementedError

    def reset(self) -> None:
        """After a failed mark: the next one starts on a working connection."""

    def close(self) -> None:
        """Nothing more to write."""


class SameConnection(Marks):
    """The statement on the sending thread's own connection (autocommit), run at confirm."""

    def __init__(self, db: str, statement: str) -> None:
        self.db = db
        self.statement = statement
        if connections[db].vendor == "sqlite":
            # The sqlite3 module's own placeholder style.
            self.statement = statement.replace("%s", "?")
        self.params: Params | None = None
        self.written = False

    def send(self, params: Params) -> None:
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
                updated = cursor.rowcount
            finally:
                cursor.close()
        if updated != 1:
            raise ChunkTaken("the chunk's progress row is gone (recovered by another run)")
        self.written = True

    def settle(self) -> bool:
        self.params = None
        written, self.written = self.written, False
        return written

    def reset(self) -> None:
        # Django replaces a broken connection only when asked.
        connections[self.db].close_if_unusable_or_obsolete()


class SeparateConnection(Marks):
    """PostgreSQL: the statement sent on a connection of its own, its result read at confirm.

    The statement goes out through libpq's asynchronous calls (``psycopg.pq``)
    so that nothing waits for it until the message's end is near; Django's
    wrappers are left out of this per-message path. Any failure drops the
    connection (the next mark opens another) and raises ``OperationalError``.
    """

    def __init__(self, db: str, statement: str) -> None:
        from psycopg import pq

        self.db = db
        # libpq's own placeholders.
        statement = statement.replace("%s", "$1", 1).replace("%s", "$2", 1)
        self.statement = statement.replace("%s", "$3", 1).encode()
        self.raw: Any = None
        self.pgconn: Any = None
        self.state = ""  # "" nothing sent, "sent", "written", "failed"
        self._ok = (pq.ExecStatus.COMMAND_OK, pq.ConnStatus.OK)

    def _connect(self) -> Any:
        # Django's settings (OPTIONS included), but not its pool: this
        # connection stays open as long as the mailer connection, in whichever
        # thread sends, and a pool would lose a slot to each one.
        wrapper: Any = connections.create_connection(self.db)
        params = wrapper.get_connection_params()
        params.setdefault("connect_timeout", CONNECT_TIMEOUT)
        with wrapper.wrap_database_errors:
            self.raw = wrapper.Database.connect(**params)
        self.pgconn = self.raw.pgconn
        return self.pgconn

    def send(self, params: Params) -> None:
        self.state = "failed"
        on_wire, done, progress_id = params
        try:
            pgconn = self.pgconn or self._connect()
            pgconn.send_query_params(
                self.statement, [b"%d" % on_wire, done.encode(), b"%d" % progress_id]
            )
            while pgconn.flush():
                # libpq asks to read whatever arrives while its output waits.
                if _wait(pgconn.socket, select.POLLIN | select.POLLOUT) & select.POLLIN:
                    pgconn.consume_input()
        except BaseException as error:  # noqa: BLE001 - dropped, then raised again
            self._fail(error)
        self.state = "sent"

    def confirm(self) -> None:
        if self.state != "sent":
            return
        self.state = "failed"
        try:
            self._result()
        except BaseException as error:  # noqa: BLE001 - dropped, then raised again
            self._fail(error)
        self.state = "written"

    def _result(self) -> None:
        """Wait for the statement's result; raise ``OperationalError`` unless it updated its row."""
        pgconn = self.pgconn
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, select.POLLIN)
            pgconn.consume_input()
        command_ok, connection_ok = self._ok
        error: OperationalError | None = None
        while (result := pgconn.get_result()) is not None:
            if result.status != command_ok:
                message = (result.error_message or b"").decode(errors="replace").strip()
                error = OperationalError(f"recording progress failed: {message or 'no result'}")
            elif result.command_tuples != 1:
                error = ChunkTaken("the chunk's progress row is gone (recovered by another run)")
        if error is None and pgconn.status != connection_ok:
            error = OperationalError("recording progress failed: connection lost")
        if error is not None:
            raise error

    def _fail(self, error: BaseException) -> NoReturn:
        # A connection in an unknown state (an error, Ctrl-C mid-read) is not used again.
        self._drop()
        if isinstance(error, OperationalError) or not isinstance(error, Exception):
            raise error
        raise OperationalError(f"recording progress failed: {str(error).strip()}") from error

    def settle(self) -> bool:
        if self.state == "sent":
            # Its result must be read before the connection carries anything
            # else; a mark that failed is simply not written (the caller knows).
            with contextlib.suppress(OperationalError):
                self.confirm()
        written = self.state == "written"
        self.state = ""
        return written

    def _drop(self) -> None:
        raw, self.raw, self.pgconn = self.raw, None, None
        if raw is not None:
            try:
                raw.close()
            except Exception as error:  # noqa: BLE001 - it is broken already
                logger.info("closing a progress-mark connection: %s", error)

    def close(self) -> None:
        self.settle()
        self._drop()


def _wait(fd: int, events: int) -> int:
    """Wait until ``fd`` is ready for ``events``; the events that happened."""
    poll = select.poll()
    poll.register(fd, events)
    ready = poll.poll(MARK_TIMEOUT * 1000)
    if not ready:
        raise OperationalError(f"no answer from the database within {MARK_TIMEOUT:.0f} s")
    return int(ready[0][1])
