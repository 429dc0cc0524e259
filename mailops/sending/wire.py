"""How far each connection got through its chunk: a dead worker costs one row per connection.

A worker claims rows a chunk at a time and writes their outcomes after the
chunk; if it dies in between, the rows stay ``sending``. To tell which of
them may go out again, each connection keeps one
:class:`~mailops.models.SendingProgress` row per chunk up to date, with one
short UPDATE per message, committed before the message's final ".":
which row is on the wire, and how the rows before it on this connection
ended (written by :func:`encode_outcome`, read by :func:`parse_outcomes`).
When a connection moves on to a new chunk, the old chunk's row is closed (nothing on the wire, every
outcome in): its outcomes may still be on their way to the mail log.
Recovery (:mod:`mailops.sending.recovery`) reads the rows: accepted rows
are sent, the row on the wire is in doubt, every other row goes back to
the queue.

The progress row is small and none of its indexed columns change, so the
update is cheap (on PostgreSQL a HOT update, whose commit does not wait for
the WAL flush: a killed worker loses nothing committed; only a crash of
PostgreSQL itself could lose the last marks); marking the mail log row
itself would update each of its indexes. Where and when the statement runs
is :mod:`mailops.sending.marks`.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connections, router, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat

from mailops.models import MailLog, SendingProgress
from mailops.sending.marks import ChunkTaken, Marks, SameConnection, SeparateConnection


def encode_outcome(pk: int, *, delivered: bool | None) -> str:
    """A row's outcome in ``done``: "pk " accepted, "-pk " not delivered, "?pk " in doubt."""
    prefix = "?" if delivered is None else "" if delivered else "-"
    return f"{prefix}{pk} "


def parse_outcomes(done: str) -> Iterator[tuple[int, bool | None]]:
    """The ``(pk, delivered)`` pairs :func:`encode_outcome` wrote (``None``: in doubt)."""
    meaning = {"-": False, "?": None}
    for item in done.split():
        yield int(item.lstrip("-?")), meaning.get(item[0], True)


class WireLedger:
    """The statement that marks progress, built once per delivery run."""

    def __init__(self, *, separate_connection: bool = False) -> None:
        self.db = router.db_for_write(SendingProgress)
        connection = connections[self.db]
        quote = connection.ops.quote_name
        table = quote(SendingProgress._meta.db_table)
        # Marks on a connection of their own (Strategy.marks_connection).
        self.separate_connection = separate_connection
        lazy_commit = ""
        if connection.vendor == "postgresql":
            # set_config(..., true) lasts this statement's own transaction:
            # the connection's own settings stay as they came.
            lazy_commit = " AND set_config('synchronous_commit', 'off', true) = 'off'"
        # Raw SQL, built once from quoted model names (no user input), run on
        # the driver: the ORM's update(), even Django's cursor wrapper, cost
        # more per message than the statement itself.
        self.statement = (
            f"UPDATE {table} SET {quote('on_wire')} = %s, "  # noqa: S608
            f"{quote('done')} = {quote('done')} || %s WHERE {quote('id')} = %s{lazy_commit}"
        )

    def track(self) -> WireTrack:
        kind = SeparateConnection if self.separate_connection else SameConnection
        return WireTrack(self, kind(self.db, self.statement))

    def start(self, token: str, pk: int, *, closing: tuple[int, str] | None = None) -> int:
        """A progress row for one connection's share of a chunk, ``pk`` on the wire; its id.

        ``closing`` is the connection's previous progress row and the
        outcomes not in it yet: it is closed in the same transaction.
        """
        progress_rows = SendingProgress.objects.using(self.db)
        claim = MailLog.objects.using(self.db).by_pks([pk]).claimed_by(token)
        # Still ours? Recovery may have taken the chunk. It holds the mail log
        # rows first, then the progress rows: so does this, where rows can be
        # locked; on SQLite a write first takes the one write lock instead.
        lock_first = connections[self.db].features.has_select_for_update
        with transaction.atomic(using=self.db):
            if lock_first and not list(claim.select_for_update(no_key=True).values_list("pk")):
                raise ChunkTaken("the chunk was recovered by another run")
            if closing is not None:
                previous, done = closing
                progress_rows.filter(pk=previous).update(
                    on_wire=None, done=Concat(F("done"), Value(done), output_field=TextField())
                )
            progress = progress_rows.create(token=token, on_wire=pk)
            if not lock_first and not claim.exists():
                raise ChunkTaken("the chunk was recovered by another run")
        return int(progress.pk)


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
        # The claim whose progress row recovery took away.
        self.taken_token = ""

    def taken(self, row: MailLog) -> bool:
        """Whether recovery took ``row``'s chunk away (:class:`~.marks.ChunkTaken`)."""
        return bool(self.taken_token) and row.claimed_by == self.taken_token

    def begin(self, row: MailLog) -> None:
        """Start marking ``row`` as on the wire; :meth:`confirm` before its final "."."""
        if self.progress_id is None or row.claimed_by != self.token:
            # A new chunk; the previous one's outcomes may not be in the mail log yet.
            closing = None if self.progress_id is None else (self.progress_id, self.pending)
            try:
                self.progress_id = self.ledger.start(row.claimed_by, row.pk, closing=closing)
            except ChunkTaken:
                self.taken_token = row.claimed_by
                raise
            self.token = row.claimed_by
            self.pending = ""
            return
        self.sending, self.pending = self.pending, ""
        self.marks.send((row.pk, self.sending, self.progress_id))

    def confirm(self) -> None:
        """The mark is committed (raises ``DatabaseError`` if it cannot be)."""
        try:
            self.marks.confirm()
        except ChunkTaken:
            self.taken_token = self.token
            raise

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

    def finish(self, row: MailLog, *, delivered: bool | None) -> None:
        """Record with the next mark how ``row`` ended (``None``: in doubt)."""
        self.pending += encode_outcome(row.pk, delivered=delivered)

    def reset(self) -> None:
        """After a failed mark: the next one starts on a working database connection."""
        self.marks.reset()

    def close(self) -> None:
        self.marks.close()


def forget_progress(token: str) -> None:
    """The chunk's outcomes are written: its progress rows are no longer needed."""
    SendingProgress.objects.filter(token=token).delete()
