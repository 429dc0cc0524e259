"""Rows a dead worker left in ``sending``: settled by their progress marks, never resent blindly.

A worker moves rows to ``sending`` when it claims them and records the
outcomes after the chunk. If it dies in between (SIGKILL, OOM, a lost
database connection), the rows stay ``sending`` until their lease
(``MAILOPS["SENDING_LEASE"]``) runs out. Each row's ``wire_state``
(:mod:`mailops.sending.wire`) then says what became of it:

* never attempted, or refused before the end of DATA: back to the queue
  (a never-attempted row gets its attempt back);
* accepted by the server: ``sent``;
* on the wire when the worker died: ``failed``, ``in_doubt``, with a reason
  that says it may have been delivered; at most one per connection.

Every delivery run does this for its scope before claiming (so a
restarted worker carries on by itself); ``mailops_deliver --recover``
does it on request. ``requeue=True`` also requeues the in-doubt rows, the
explicit opt-in for sites that prefer a possible duplicate to a possible loss.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, MailLogQuerySet, MailStatus
from mailops.sending.wire import WireState

IN_DOUBT_AFTER_CRASH = (
    "in doubt: the delivery worker stopped while this message was on the wire (no "
    "outcome within {lease} s). The server may have accepted it; it was not resent "
    "automatically to avoid a duplicate. Check with the recipient and resend it if needed."
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
    """Settle rows stuck in ``sending`` past the lease by how far each got."""
    lease = get_setting("SENDING_LEASE") if lease is None else lease
    stale = stale_sending(lease=lease)
    if batch_id is not None:
        stale = stale.for_batch(batch_id)
    untouched = stale.filter(wire_state=WireState.UNTOUCHED).move_to(
        MailStatus.QUEUED,
        next_attempt_at=None,
        claimed_by="",
        # The claim counted an attempt that never happened.
        attempts=F("attempts") - 1,
    )
    retried = stale.filter(wire_state=WireState.NOT_DELIVERED).requeue(
        "requeued after the delivery worker stopped (the last attempt was not delivered)"
    )
    sent = stale.filter(wire_state=WireState.ACCEPTED).mark_sent(at=timezone.now())
    on_wire = stale.filter(wire_state=WireState.ON_WIRE)
    if requeue:
        requeued = on_wire.requeue(
            f"requeued after the delivery worker stopped (no outcome within {lease} s); "
            "the server may already have accepted an earlier attempt"
        )
        return Recovered(requeued=untouched + retried + requeued, sent=sent)
    doubt = on_wire.move_to(
        MailStatus.FAILED, in_doubt=True, error=IN_DOUBT_AFTER_CRASH.format(lease=lease)
    )
    return Recovered(requeued=untouched + retried, sent=sent, in_doubt=doubt)
