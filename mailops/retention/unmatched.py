"""Unmatched bounce reports older than ``UNMATCHED_BOUNCE_RETENTION`` days, deleted in batches.

``mailbounces`` keeps every report it could not tie to a log row (or could
not read) as an ``UnmatchedBounce`` for the admin to look at; on a site
that sends a lot, spam and foreign bounces in the mailbox make that a table
that grows for ever. These go by the day they were recorded, like log rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from mailops.models import UnmatchedBounce
from mailops.retention.batches import Pace, key_ranges, purge_transaction
from mailops.retention.policy import local_midnight


def _by_kind(reports: QuerySet[UnmatchedBounce]) -> Counter[str]:
    return Counter(dict(reports.values_list("kind").annotate(n=Count("*")).order_by()))


def purge_unmatched_bounces(
    *,
    days: int,
    batch_size: int,
    pace: Pace,
    dry_run: bool = False,
    today: date | None = None,
    using: str = "default",
) -> tuple[Counter[str], int]:
    """Delete reports recorded before local midnight ``days`` days ago; (counts by kind, batches).

    ``dry_run`` counts instead. A report never changes once recorded, and
    new ones are recorded today with higher keys, so each batch counts and
    deletes the same reports.
    """
    cutoff = local_midnight((today or timezone.localdate()) - timedelta(days=days))
    reports = UnmatchedBounce.objects.using(using).order_by()
    old = reports.filter(created_at__lt=cutoff)
    if dry_run:
        return _by_kind(old), 0
    deleted: Counter[str] = Counter()
    batches = 0
    for first, last, _share in key_ranges(reports, cutoff, batch_size):
        begun = pace.clock()
        with purge_transaction(using):
            batch = old.filter(pk__gte=first, pk__lte=last)
            counts = _by_kind(batch)
            # One statement while nothing points at a report (a project's
            # foreign key to one is followed by Django's deletion).
            batch.delete()
        if counts:
            deleted.update(counts)
            batches += 1
            pace.rest(after=begun)
    return deleted, batches
