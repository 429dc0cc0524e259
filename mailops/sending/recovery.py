"""Rows a dead worker left in ``sending``: found by their lease, never silently resent.

A worker moves rows to ``sending`` when it claims them and records the
outcome after the chunk. If it dies in between (SIGKILL, OOM, a lost
database connection), those rows stay ``sending``. Whether the server
accepted any of them cannot be known: SMTP's reply was never read, and the
message may be in the recipient's inbox already. Resending risks a duplicate;
doing nothing leaves them stuck. mailops marks them ``failed`` with a reason
that says exactly that, so an operator reviews them and resends from the
admin if needed. ``requeue=True`` is the explicit opt-in for sites that
prefer a possible duplicate to a possible loss.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, MailLogQuerySet


def stale_sending(*, lease: int | None = None) -> MailLogQuerySet:
    """Rows in ``sending`` whose claim is older than the lease (seconds)."""
    lease = get_setting("SENDING_LEASE") if lease is None else lease
    cutoff = timezone.now() - timedelta(seconds=lease)
    # The claim is the last write to a "sending" row, so updated_at is its time.
    return MailLog.objects.sending().filter(updated_at__lte=cutoff)


def recover_stale_sending(*, lease: int | None = None, requeue: bool = False) -> int:
    """Fail (or with ``requeue`` re-queue) rows stuck in ``sending``; return how many."""
    lease = get_setting("SENDING_LEASE") if lease is None else lease
    stale = stale_sending(lease=lease)
    if requeue:
        return stale.requeue(
            f"requeued after the delivery worker stopped (no outcome within {lease} s); "
            "the server may already have accepted an earlier attempt"
        )
    return stale.fail(
        (
            f"needs review: the delivery worker stopped while sending (no outcome within "
            f"{lease} s). The server may or may not have accepted this message; it was "
            "not resent automatically to avoid a duplicate. Check with the recipient "
            "and resend it if needed."
        ),
    )
