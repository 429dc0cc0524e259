"""Large user selections whose queued rows a worker writes, a chunk at a time.

Writing one log row per selected user is what makes a large "select all"
slow: 100,000 rows take seconds to insert, each feeding every index of the
mail log. Above ``MAILOPS["WRITE_IN_REQUEST_LIMIT"]`` users, the request
stores the selected ids in a :class:`~mailops.models.PendingBatch` (one
row) and enqueues delivery as usual; every delivery run
(:func:`mailops.delivery.deliver_batch`: the task, ``mailops_deliver``)
first writes the rows still to be written, a chunk per transaction. Until
then the batch page counts them as queued.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.db.models import F, QuerySet, Sum

from .models import MailLog, PendingBatch, batch_values
from .user_rows import insert_user_rows, user_ids_with_address

# Ids turned into rows per transaction: large enough that the selected ids
# (stored as one JSON list) are read a few dozen times, not thousands.
WRITE_CHUNK = 5000


def defer_user_rows(users: QuerySet[Any], template: MailLog) -> int:
    """Record the users with an address for a worker to write; return how many."""
    user_ids = user_ids_with_address(users)
    if user_ids:
        pending = PendingBatch(
            batch_id=template.batch_id, expected=len(user_ids), **batch_values(template)
        )
        pending.user_ids = user_ids
        pending.save(force_insert=True)
    return len(user_ids)


def write_pending_rows(batch_id: uuid.UUID | str, *, chunk_size: int = WRITE_CHUNK) -> int:
    """Write the batch's remaining rows; return how many this call wrote.

    Each chunk is taken with a conditional UPDATE of ``written`` in the
    transaction that inserts its rows: a second writer of the same batch
    (two delivery tasks, a task and ``mailops_deliver``) finds ``written``
    moved on and goes on from there, so no row is written twice, on any
    database.
    """
    users = get_user_model()._default_manager.all()
    db = router.db_for_write(MailLog)
    batches = PendingBatch.objects.using(db)
    pending = batches.filter(pk=batch_id, written__lt=F("expected")).first()
    if pending is None:
        return 0
    # The ids are read once; only ``written`` is read again after losing a chunk.
    user_ids = pending.user_ids
    template = pending.row_template()
    domain = template.from_email.rpartition("@")[2] or "mailops.invalid"
    start, rows = pending.written, 0
    while start < pending.expected:
        chunk = user_ids[start : start + chunk_size]
        taken: dict[str, Any] = {"written": start + len(chunk)}
        if start + len(chunk) >= pending.expected:
            # The ids go with the last chunk: only the counts stay.
            taken["selected_ids"] = ""
        with transaction.atomic(using=db):
            if batches.filter(pk=batch_id, written=start).update(**taken):
                # A user deleted (or left without an address) since gets no row.
                rows += insert_user_rows(
                    users.filter(pk__in=chunk), template, with_address=True, domain=domain
                )
                start += len(chunk)
                continue
        # Another writer took this chunk: go on from where it got to.
        current = batches.filter(pk=batch_id).values_list("written", flat=True).first()
        if current is None:
            return rows
        start = current
    return rows


def unwritten_batches() -> list[uuid.UUID]:
    """Batches with rows still to write (a worker stopped, or was never reached)."""
    unfinished = PendingBatch.objects.filter(written__lt=F("expected"))
    return list(unfinished.order_by("created_at").values_list("batch_id", flat=True))


def unwritten_batch(batch_id: uuid.UUID | str) -> PendingBatch | None:
    """The batch's pending record while rows are left to write (without the ids)."""
    unfinished = PendingBatch.objects.filter(pk=batch_id, written__lt=F("expected"))
    return unfinished.defer("selected_ids", "body").first()


def unwritten_rows(batch_id: uuid.UUID | str | None = None) -> int:
    """Rows still to be written, of one batch or of all (0 for ordinary batches)."""
    unfinished = PendingBatch.objects.filter(written__lt=F("expected"))
    if batch_id is not None:
        unfinished = unfinished.filter(pk=batch_id)
    total = unfinished.aggregate(n=Sum(F("expected") - F("written")))["n"]
    return int(total or 0)
