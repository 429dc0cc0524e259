"""Claiming chunks and writing their outcomes: in the calling thread, or one chunk ahead.

Each chunk costs two statements on the mail log besides the sending: the
claim (rows to ``sending``) and the outcomes. Each touches every index of
the table, so on a busy log they take a good share of a chunk's time. With
a database server of its own (PostgreSQL), :class:`AheadBookkeeping` runs
them in a thread of its own while the mailer connection sends: the next
chunk is claimed, and the last one's outcomes written, as the current one
goes out. The sending thread mostly waits for the SMTP server's replies,
so the two hardly compete for the interpreter.

A run so holds up to two chunks more in ``sending`` than a plain one: the
one claimed ahead, and the last one until its outcomes are written. If the
worker dies, lease recovery puts the first back in the queue (never
attempted) and settles the second by its progress marks; if the run ends
early, :meth:`AheadBookkeeping.close` gives the first back itself. Not with
a rate limit: chunks are then sized to go out within half the lease, and a
chunk that waits for the one before it would not.

Once a chunk's outcomes are in the log, ``written`` is called with its rows,
in the calling thread and before the next chunk's write starts: a progress
report made there reads a log that holds exactly the outcomes counted so
far, however fast or slow the writing thread was.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connections

from mailops.models import MailLog

Claim = Callable[[], list[MailLog]]
Write = Callable[[list[MailLog]], None]
# Called with a chunk's rows once their outcomes are in the log.
Written = Callable[[list[MailLog]], None]


class Bookkeeping:
    """Claims and outcome writes, each done when asked, in the calling thread."""

    def __init__(self, claim: Claim, write: Write, written: Written) -> None:
        self._claim = claim
        self._write = write
        self._written = written

    def next_chunk(self) -> list[MailLog]:
        """The next chunk of claimed rows; empty when none are due."""
        return self._claim()

    def write(self, rows: list[MailLog]) -> None:
        """Write the outcomes of ``rows``; ``written`` follows once they are in the log."""
        self._write(rows)
        self._written(rows)

    def flush(self) -> None:
        """Return once every outcome handed to :meth:`write` is written."""

    def close(self) -> None:
        """Flush; nothing claimed is left unsent."""


class AheadBookkeeping(Bookkeeping):
    """Claims one chunk ahead and writes outcomes in a thread of its own, in order."""

    def __init__(self, claim: Claim, write: Write, written: Written) -> None:
        super().__init__(claim, write, written)
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mailops-bookkeeping"
        )
        self._next: Future[list[MailLog]] | None = self._pool.submit(claim)
        # The one write on its way, and its rows.
        self._in_flight: tuple[Future[None], list[MailLog]] | None = None

    def next_chunk(self) -> list[MailLog]:
        if self._next is None or self._pool is None:
            return []
        if self._in_flight is not None and self._in_flight[0].done():
            # A write that failed stops the run before more is sent.
            self.flush()
        rows = self._next.result()
        # The one after it is claimed while this one is sent.
        self._next = self._pool.submit(self._claim) if rows else None
        return rows

    def write(self, rows: list[MailLog]) -> None:
        # The previous chunk's outcomes are in the log (and reported) before
        # this one's write starts: never two writes on their way at once.
        self.flush()
        if self._pool is None:
            super().write(rows)
            return
        self._in_flight = (self._pool.submit(self._write, rows), rows)

    def flush(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            future, rows = in_flight
            future.result()
            self._written(rows)

    def close(self) -> None:
        """Flush; give a chunk claimed ahead and never sent back to the queue; stop the thread."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            self.flush()
        finally:
            try:
                ahead, self._next = self._next, None
                rows = ahead.result() if ahead is not None else []
                if rows:
                    MailLog.objects.claimed_by(rows[0].claimed_by).unclaim()
            finally:
                # The thread's own database connection is closed in the thread.
                pool.submit(connections.close_all)
                pool.shutdown(wait=True)
