"""Writing site-mail rows off the sender's thread, many in one insert.

One committed insert per ``send_mail`` costs about as much as a send to a
server on the same machine (bench/site_mail.py: 0.63x the unaudited rate on
PostgreSQL), because each commit is a round trip and a WAL flush. A single
writer thread per process takes the rows from a queue and inserts what
arrived within 50 ms of the first (``LINGER_SECONDS``), up to 500 rows per
insert: a row is in the log at most that long after its mail went out, and
a burst of single sends costs one commit per batch instead of one each.

What it changes, and why that is acceptable for an audit log:

* rows are written in their own transaction, not the caller's: a view that
  sends mail and then rolls back still has its (sent) mail logged;
* rows still queued when the process is killed outright (SIGKILL, OOM) are
  lost: at most the current batch. A normal exit flushes the queue
  (``atexit``), and so does :func:`flush` for code that needs the rows now;
* a failed insert is logged (``mailops.audit``) like an inline one; when a
  batch fails for a reason of its own rows (not a database that is down),
  each of its rows is written alone, so one bad row costs no other row, and
  the bad one is reported by its recipient and message id.

``MAILOPS["AUDIT_WRITE"] = "inline"`` writes in the sender's thread and
transaction instead.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import OperationalError, connections

Rows = list[dict[str, Any]]
# Rows per insert at most, however many piled up.
BATCH_LIMIT = 500
# Seconds the writer waits for more rows after the first of a batch.
LINGER_SECONDS = 0.05
# Seconds between attempts at a batch the database refused for a moment.
RETRY_PAUSES = (0.05, 0.25, 1.0, 3.0)
# Seconds a normal exit waits for the queue to drain.
EXIT_FLUSH_SECONDS = 10.0


class RowWriter:
    """A queue of site-mail rows and the daemon thread that inserts them."""

    def __init__(
        self,
        write: Callable[[Rows], int],
        *,
        on_error: Callable[[Rows, BaseException], None],
        batch_limit: int = BATCH_LIMIT,
        linger: float = LINGER_SECONDS,
    ) -> None:
        # ``write`` raises on failure; ``on_error`` reports the rows given up on.
        self._write = write
        self._on_error = on_error
        self._linger = linger
        self._batch_limit = batch_limit
        self._queue: queue.SimpleQueue[Rows] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        # Rows submitted and not yet written (or given up on).
        self._pending = 0
        self._thread: threading.Thread | None = None

    def submit(self, rows: Rows) -> None:
        """Queue ``rows`` for the writer thread (started on first use)."""
        if not rows:
            return
        with self._lock:
            self._pending += len(rows)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="mailops-audit-writer", daemon=True
                )
                self._thread.start()
        self._queue.put(rows)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued row was written; ``False`` if ``timeout`` passed first."""
        if self._thread is not None:
            self._queue.put([])  # no lingering: someone waits for these rows
        with self._drained:
            return self._drained.wait_for(lambda: self._pending == 0, timeout)

    @property
    def pending(self) -> int:
        return self._pending

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if not batch:
                continue  # a flush's "write now" with nothing waiting
            # Gather what arrives within LINGER_SECONDS of the first row: a burst
            # of single sends becomes one insert instead of one commit each.
            deadline = time.monotonic() + self._linger
            while len(batch) < self._batch_limit:
                remaining = deadline - time.monotonic()
                try:
                    more = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if not more:
                    break  # flush() is waiting: write what there is now
                batch = batch + more
            try:
                self._write_with_retries(batch)
            finally:
                # A broken connection is not reused for the next batch.
                for connection in connections.all(initialized_only=True):
                    connection.close_if_unusable_or_obsolete()
                with self._drained:
                    self._pending -= len(batch)
                    self._drained.notify_all()

    def _write_with_retries(self, batch: Rows) -> None:
        for pause in (*RETRY_PAUSES, None):
            try:
                self._write(batch)
                return
            except OperationalError as error:
                # SQLite's "database is locked" while the sender's thread holds a
                # write transaction; a dropped connection: both pass.
                if pause is None:
                    self._on_error(batch, error)
                    return
                connections.close_all()
                time.sleep(pause)
            except Exception as error:  # noqa: BLE001 - reported; the sender never sees it
                if len(batch) == 1:
                    self._on_error(batch, error)
                else:
                    self._write_each(batch)
                return

    def _write_each(self, batch: Rows) -> None:
        # The batch failed for a reason of its own rows (the database is up):
        # one bad row must not cost the others theirs, so each is written (or
        # reported) alone.
        for row in batch:
            try:
                self._write([row])
            except Exception as error:  # noqa: BLE001 - reported; the sender never sees it
                self._on_error([row], error)

    def _forget_after_fork(self) -> None:
        # A forked child (pre-forking servers) has no writer thread, and the
        # rows queued in the parent are the parent's to write.
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._pending = 0
        self._thread = None


_writer: RowWriter | None = None
_writer_lock = threading.Lock()


def background_writer(
    write: Callable[[Rows], int], *, on_error: Callable[[Rows, BaseException], None]
) -> RowWriter:
    """The process's writer (created on first use), flushed when the process exits."""
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = RowWriter(write, on_error=on_error)
            atexit.register(_writer.flush, EXIT_FLUSH_SECONDS)
            os.register_at_fork(after_in_child=_writer._forget_after_fork)
        return _writer


def flush(timeout: float | None = None) -> bool:
    """Wait until the site-mail rows queued so far are written (``True`` if they are)."""
    return True if _writer is None else _writer.flush(timeout)
