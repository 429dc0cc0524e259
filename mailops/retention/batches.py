"""How a purge walks a table: key ranges, short transactions, and rests for the senders."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, transaction
from django.db.models import F, Max, Min, QuerySet


@dataclass(frozen=True)
class Pace:
    """How long a purge rests after each batch, so that senders keep their pace.

    At least ``pause`` seconds, and ``ratio`` times as long as the batch
    itself took: on a busy machine, where a batch takes longer, the purge
    steps back further (with ``ratio`` 2 it works at most a third of the
    time), and on an idle one it runs at nearly full speed.
    """

    pause: float = 0.0
    ratio: float = 0.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def rest(self, *, after: float) -> None:
        """Rest after a batch begun at ``after`` (a reading of ``clock``)."""
        worked = max(0.0, self.clock() - after)
        self.sleep(max(self.pause, worked * self.ratio))


def key_ranges(
    rows: QuerySet[Any], before: datetime, size: int
) -> Iterator[tuple[int, int, float]]:
    """Primary-key ranges of ``size`` keys over the rows created before ``before``.

    Yields (first pk, last pk, share walked). Each batch reads at most
    ``size`` rows through the primary key index, whatever the filter and
    whatever plan the database would pick for it over the whole table.
    """
    # The lowest key of the table (one index entry), and the highest among
    # the rows created before ``before`` (exact: rows whose time was set by
    # hand, by an import or a test, need not follow the keys' order).
    first = rows.aggregate(first=Min("pk"))["first"]
    # "pk + 0": read from the (created_at, id) index over the old rows only
    # (the mail log's); MAX(pk) alone makes PostgreSQL walk the key index
    # down from the newest row until one is old enough (seconds at ten
    # million rows).
    last = rows.filter(created_at__lt=before).aggregate(last=Max(F("pk") + 0))["last"]
    if first is None or last is None:
        return
    for low in range(first, last + 1, size):
        high = min(low + size - 1, last)
        yield low, high, (high - first + 1) / (last - first + 1)


@contextmanager
def purge_transaction(using: str) -> Iterator[None]:
    """One short transaction of the purge, committed without waiting for the disk.

    PostgreSQL's ``synchronous_commit = off``, for the purge's own
    transactions only (``SET LOCAL``): senders keep their durable commits,
    and no longer wait for the purge's to be flushed. Safe here because a
    batch lost in a crash (at most the last fraction of a second of commits)
    is just not done: its rows are all still there, consistent, and the next
    purge deletes them (only the report of that run counted them as gone).
    Inside a caller's transaction (a task run under ``ATOMIC_REQUESTS``,
    say) nothing is changed: ``SET LOCAL`` would reach the caller's own
    writes too. Other databases commit as usual.
    """
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        yield
