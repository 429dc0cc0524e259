"""Rows a dead worker left in ``sending``: settled by their progress marks, never resent blindly.

A worker moves rows to ``sending`` when it claims them and records the
outcomes after the chunk. If it dies in between (SIGKILL, OOM, a lost
database connection), the rows stay ``sending`` until their lease
(``MAILOPS["SENDING_LEASE"]``) runs out. Each connection's progress
(:mod:`mailops.sending.wire`) then says what became of them:

* accepted by the server: ``sent``;
* on the wire when the worker died: ``failed``, ``in_doubt``, with a reason
  that says it may have been delivered; at most one per connection;
* refused or dropped before the end of DATA: back to the queue;
* never attempted: back to the queue, with its attempt given back.

Every delivery run does this for its scope before claiming (so a
restarted worker carries on by itself); ``mailops_deliver --recover``
does it on request. ``requeue=True`` also requeues the in-doubt rows, the
explicit opt-in for sites that prefer a possible duplicate to a possible loss.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.conf import get_setting
from mailops.models import MailLog, MailLogQuerySet, MailStatus, SendingProgress
from mailops.sending.wire import parse_outcomes

IN_DOUBT_AFTER_CRASH = gettext_lazy(
    "in doubt: the delivery worker stopped while this message was on the wire or "
    "waiting for the server's verdict (no outcome within {lease} s). The server may "
    "have accepted it; it was not resent automatically to avoid a duplicate. Check "
    "with the recipient and resend it if needed."
)


@dataclass(frozen=True)
class Recovered:
    """What recovery did with a dead worker's rows."""

    requeued: int = 0
    sent: int = 0
    in_doubt: int = 0

    @property
    def total(self) -> int:
        return self.requeued + self.sent + self.in_doubt


def stale_sending(*, lease: int | None = None) -> MailLogQuerySet:
    """Rows in ``sending`` whose claim is older than the lease (seconds)."""
    lease = get_setting("SENDING_LEASE") if lease is None else lease
    cutoff = timezone.now() - timedelta(seconds=lease)
    # The claim is the last write to a "sending" row (progress marks leave
    # updated_at alone), so updated_at is its time.
    return MailLog.objects.sending().filter(updated_at__lte=cutoff)


def recover_stale_sending(
    *,
    lease: int | None = None,
    requeue: bool = False,
    batch_id: uuid.UUID | str | None = None,
) -> Recovered:
    """Settle rows stuck in ``sending`` past the lease by how far each got.

    It is one transaction that holds the stale rows first: on PostgreSQL it
    locks them and their progress rows, on SQLite it takes the write lock.
    A worker that was only slow and marks its next message meanwhile waits,
    then finds its progress row gone and sends nothing more of the chunk
    (see ``sending.marks.ChunkTaken``).
    """
    lease = get_setting("SENDING_LEASE") if lease is None else lease
    stale = stale_sending(lease=lease)
    if batch_id is not None:
        stale = stale.for_batch(batch_id)
    tokens = set(stale.order_by().values_list("claimed_by", flat=True).distinct())
    if not tokens:
        return Recovered()
    # A chunk can hold rows of several batches (a run over every batch): all
    # of its rows are settled together, or the others would lose their marks.
    stale = stale_sending(lease=lease).filter(claimed_by__in=tokens)
    db = router.db_for_write(MailLog)
    lock = connections[db].features.has_select_for_update
    with transaction.atomic(using=db):
        if lock:
            list(stale.select_for_update(no_key=True).order_by("pk").values_list("pk"))
        else:
            # A write first: SQLite's write lock for the whole transaction.
            stale.update(updated_at=F("updated_at"))
        return _settle(stale, tokens, lease=lease, requeue=requeue, lock=lock)


def _settle(
    stale: MailLogQuerySet, tokens: set[str], *, lease: int, requeue: bool, lock: bool
) -> Recovered:
    accepted, not_delivered, on_wire = _progress(tokens, lock=lock)
    sent = stale.filter(pk__in=accepted).mark_sent(at=timezone.now())
    doubt = stale.filter(pk__in=on_wire)
    requeued = 0
    in_doubt = 0
    if requeue:
        requeued += doubt.requeue(
            _(
                "requeued after the delivery worker stopped (no outcome within %(lease)s s); "
                "the server may already have accepted an earlier attempt"
            )
            % {"lease": lease}
        )
    else:
        in_doubt = doubt.move_to(
            MailStatus.FAILED, in_doubt=True, error=IN_DOUBT_AFTER_CRASH.format(lease=lease)
        )
    requeued += stale.filter(pk__in=not_delivered).requeue(
        _("requeued after the delivery worker stopped (the last attempt was not delivered)")
    )
    # What is left was never attempted: the claim counted an attempt that never happened.
    requeued += stale.unclaim()
    SendingProgress.objects.filter(token__in=tokens).delete()
    return Recovered(requeued=requeued, sent=sent, in_doubt=in_doubt)


def _progress(tokens: set[str], *, lock: bool) -> tuple[set[int], set[int], set[int]]:
    """(accepted, not delivered, in doubt) row ids from the claims' progress rows."""
    accepted: set[int] = set()
    not_delivered: set[int] = set()
    # On the wire when the worker died, or sent with no verdict ("?pk").
    in_doubt: set[int] = set()
    outcomes = {True: accepted, False: not_delivered, None: in_doubt}
    progress_rows = SendingProgress.objects.filter(token__in=tokens)
    if lock:
        progress_rows = progress_rows.select_for_update().order_by("pk")
    for progress in progress_rows:
        for pk, delivered in parse_outcomes(progress.done):
            outcomes[delivered].add(pk)
        if progress.on_wire is not None:
            in_doubt.add(progress.on_wire)
    # An accepted row is never sent again, so "accepted" wins over a stale "on
    # the wire" (a connection that died at MAIL, its row then sent by another).
    # A row retried on a fresh connection was on the wire last: that beats "not delivered".
    return accepted, not_delivered - in_doubt - accepted, in_doubt - accepted
