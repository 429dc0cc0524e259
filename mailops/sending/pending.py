"""Large user selections whose queued rows a worker writes, a chunk at a time.

Writing one log row per selected user is what makes a large "select all"
slow: 100,000 rows take seconds to insert, each feeding every index of the
mail log. Above ``MAILOPS["WRITE_IN_REQUEST_LIMIT"]`` users, the request
stores the selected ids in a :class:`~mailops.models.PendingBatch` (one row)
and enqueues delivery as usual; every delivery run
(:func:`mailops.sending.delivery.deliver_batch`: the task, ``mailops_deliver``)
first writes the rows still to be written, a chunk per transaction
(``WRITE_CHUNK_SIZE``). Until then the batch page counts them as queued.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.db.models import F, QuerySet, Sum

from mailops.conf import get_setting
from mailops.models import MailLog, PendingBatch, batch_values
from mailops.sending.composition import message_id_domain
from mailops.sending.rows import insert_user_rows, user_ids_with_address

logger = logging.getLogger("mailops.pending_batches")


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


def write_pending_rows(batch_id: uuid.UUID | str, *, chunk_size: int | None = None) -> int:
    """Write the batch's remaining rows; return how many this call wrote.

    Each chunk is taken with a conditional UPDATE of ``written`` in the
    transaction that inserts its rows: a second writer of the same batch
    (two delivery tasks, a task and ``mailops_deliver``) finds ``written``
    moved on and goes on from there, so no row is written twice, on any
    database.
    """
    chunk_size = chunk_size or get_setting("WRITE_CHUNK_SIZE")
    db = router.db_for_write(MailLog)
    # The request only defers when users and log share this database.
    users = get_user_model()._default_manager.db_manager(db).all()
    batches = PendingBatch.objects.using(db)
    pending = batches.filter(pk=batch_id).first()
    if pending is None:
        return 0
    # The ids are read once; only ``written`` is read again after losing a chunk.
    user_ids = pending.user_ids
    template = pending.row_template()
    domain = message_id_domain(template.from_email)
    start, rows = pending.written, 0
    while True:
        chunk = user_ids[start : start + chunk_size]
        with transaction.atomic(using=db):
            mine = batches.filter(pk=batch_id, written=start)
            if mine.update(written=start + len(chunk)):
                # A user deleted (or left without an address) since gets no row.
                if chunk:
                    rows += insert_user_rows(
                        users.filter(pk__in=chunk), template, with_address=True, domain=domain
                    )
                start += len(chunk)
                if not chunk or start >= pending.expected:
                    # Every row is written: the log alone tells the rest.
                    batches.filter(pk=batch_id).delete()
                    break
                continue
        # Another writer took this chunk (or finished the batch): go on from there.
        current = batches.filter(pk=batch_id).values_list("written", flat=True).first()
        if current is None:
            break
        start = current
    logger.info("wrote %d queued rows of batch %s", rows, batch_id)
    return rows


def unwritten_batches() -> list[uuid.UUID]:
    """Batches with rows still to write (a worker stopped, or was never reached)."""
    # A batch's record is deleted with its last chunk: every one left has rows to write.
    return list(PendingBatch.objects.order_by("created_at").values_list("batch_id", flat=True))


def unwritten_batch(batch_id: uuid.UUID | str) -> PendingBatch | None:
    """The batch's pending record while rows are left to write (without the ids)."""
    return PendingBatch.objects.filter(pk=batch_id).defer("selected_ids", "body").first()


def unwritten_rows(batch_id: uuid.UUID | str | None = None) -> int:
    """Rows still to be written, of one batch or of all (0 for ordinary batches)."""
    unfinished = PendingBatch.objects.all()
    if batch_id is not None:
        unfinished = unfinished.filter(pk=batch_id)
    total = unfinished.aggregate(n=Sum(F("expected") - F("written")))["n"]
    return int(total or 0)
