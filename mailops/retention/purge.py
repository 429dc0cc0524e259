"""Delete what the retention policy no longer keeps, in short batches beside live sending.

Rows go in batches of ``PURGE_BATCH_SIZE`` primary keys, each in its own
short transaction, with a pause (``PURGE_PAUSE``) between batches: senders
insert and update rows meanwhile, and no lock is held long. Before the first
row goes, the days being purged are closed into the daily roll-up
(:mod:`mailops.retention.history`), so the log's numbers survive.

What points at a deleted row is handled through Django's own deletion
(``QuerySet.delete()``): each foreign key's ``on_delete`` decides (a
``MailEvent`` goes with its row; a model added later with ``SET_NULL``
keeps its row and loses the link). ``SendingProgress`` rows, which name a
claim token rather than a row, go once no row of that claim is in flight.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db import models, transaction
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.deletion import get_candidate_relations_to_delete
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, SendingProgress
from mailops.retention.history import close_days
from mailops.retention.policy import PurgeRule, local_midnight, purge_rules, rows_matching
from mailops.statuses import UNFINISHED_STATUSES


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete)."""

    dry_run: bool = False
    deleted: Counter[str] = field(default_factory=Counter)
    bodies_cleared: int = 0
    days_closed: int = 0
    batches: int = 0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "deleted": dict(sorted(self.deleted.items())),
            "deleted_total": self.total,
            "bodies_cleared": self.bodies_cleared,
            "days_closed": self.days_closed,
            "batches": self.batches,
        }


# Called after each batch with the rows deleted so far and the share (0 to 1)
# of the primary-key range walked.
ProgressCallback = Callable[[int, float], None]


def body_cutoff(days: int, *, today: date | None = None) -> datetime:
    return local_midnight((today or timezone.localdate()) - timedelta(days=days))


def body_rows(cutoff: datetime) -> Q:
    """Finished rows created before ``cutoff`` whose stored body is not yet cleared."""
    return Q(created_at__lt=cutoff) & ~Q(body="") & ~Q(status__in=UNFINISHED_STATUSES)


def purge_mail_log(
    *,
    rules: list[PurgeRule],
    body_days: int | None = None,
    batch_size: int = 5000,
    pause: float = 0.0,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    using: str = "default",
) -> PurgeReport:
    """Delete the rows ``rules`` match, then clear bodies older than ``body_days``.

    ``dry_run`` counts instead (nothing is closed, deleted or cleared).
    ``sleep`` is called with ``pause`` after each batch that changed rows.
    """
    report = PurgeReport(dry_run=dry_run)
    logs = MailLog.objects.using(using).order_by()
    doomed = rows_matching(rules) if rules else None
    cleared_before = body_cutoff(body_days) if body_days is not None else None
    bodies = body_rows(cleared_before) if cleared_before is not None else None
    if dry_run:
        if doomed is not None:
            rows = logs.filter(doomed).values("status").annotate(n=Count("*"))
            report.deleted.update({row["status"]: row["n"] for row in rows})
        if bodies is not None:
            kept = logs.filter(bodies)
            report.bodies_cleared = (kept.exclude(doomed) if doomed else kept).count()
        return report

    if doomed is not None:
        newest = max(rule.cutoff_day for rule in rules)
        report.days_closed = close_days(newest, using=using)
        for first, last, share in _key_ranges(logs, local_midnight(newest), batch_size):
            deleted = _delete_batch(logs, doomed, (first, last), using=using)
            if deleted:
                report.deleted.update(deleted)
                report.batches += 1
                sleep(pause)
            if progress:
                progress(report.total, share)
    if bodies is not None and cleared_before is not None:
        for first, last, _share in _key_ranges(logs, cleared_before, batch_size):
            with transaction.atomic(using=using):
                cleared = logs.filter(bodies, pk__gte=first, pk__lte=last).update(body="")
            if cleared:
                report.bodies_cleared += cleared
                report.batches += 1
                sleep(pause)
    return report


def _key_ranges(
    logs: QuerySet[MailLog], before: datetime, size: int
) -> Iterator[tuple[int, int, float]]:
    """Primary-key ranges of ``size`` keys over the rows created before ``before``.

    Yields (first pk, last pk, share walked). Each batch reads at most
    ``size`` rows through the primary key index, whatever the filter and
    whatever plan the database would pick for it over the whole table.
    """
    # The lowest key of the table (one index entry), and the highest among
    # the rows created before ``before`` (exact: rows whose time was set by
    # hand, by an import or a test, need not follow the keys' order).
    first = logs.aggregate(first=Min("pk"))["first"]
    # "pk + 0": read from the (created_at, id) index over the old rows only;
    # MAX(pk) alone makes PostgreSQL walk the key index down from the newest
    # row until one is old enough (seconds at ten million rows).
    last = logs.filter(created_at__lt=before).aggregate(last=Max(F("pk") + 0))["last"]
    if first is None or last is None:
        return
    for low in range(first, last + 1, size):
        high = min(low + size - 1, last)
        yield low, high, (high - first + 1) / (last - first + 1)


def _delete_batch(
    logs: QuerySet[MailLog], doomed: Q, batch: tuple[int, int], *, using: str
) -> Counter[str]:
    """Delete one range's matching rows (and what depends on them); counts by status.

    The rows are locked first (``SELECT ... FOR UPDATE`` where the database
    has it), so none changes status between being counted and deleted.
    """
    with transaction.atomic(using=using):
        rows = logs.filter(doomed, pk__gte=batch[0], pk__lte=batch[1])
        found = list(rows.select_for_update().values_list("pk", "status", "claimed_by"))
        if not found:
            return Counter()
        # The locked rows are exactly those the range and the filter select
        # (locked rows cannot change, new rows get higher keys and today's
        # time), so the statements below name them by that condition rather
        # than by a list of thousands of keys.
        if _release_dependants(rows, using=using):
            # One DELETE for the batch: Django's QuerySet.delete() would load
            # the rows and delete them a hundred keys per statement.
            rows._raw_delete(using)
        else:
            rows.only("pk").delete()
        tokens = {token for _, _, token in found if token}
        if tokens:
            live = MailLog.objects.using(using).filter(
                claimed_by__in=tokens, status__in=UNFINISHED_STATUSES
            )
            SendingProgress.objects.using(using).filter(token__in=tokens).exclude(
                token__in=live.values("claimed_by")
            ).delete()
        return Counter(status for _, status, _ in found)


def _release_dependants(rows: QuerySet[MailLog], *, using: str) -> bool:
    """Apply each foreign key to ``MailLog``'s ``on_delete`` to the rows pointing at ``rows``.

    Whatever model points at the log (``MailEvent`` here, a later model of
    the host's or of mailops'), its own ``on_delete`` decides: CASCADE
    deletes those rows (through Django, so their own dependants follow),
    SET_NULL / SET_DEFAULT unlink them, DO_NOTHING leaves them to the
    database. False (nothing done) when a key asks for more (PROTECT,
    RESTRICT, ``SET(...)``): then Django's own deletion handles the batch,
    with its errors.
    """
    simple = (models.CASCADE, models.SET_NULL, models.SET_DEFAULT, models.DO_NOTHING)
    # The relations Django's own deletion follows, hidden ones included
    # (related_name="+", which _meta.related_objects leaves out).
    options: Any = MailLog._meta
    relations: list[Any] = list(get_candidate_relations_to_delete(options))
    if any(relation.on_delete not in simple for relation in relations):
        return False
    for relation in relations:
        field = relation.field
        pointing = relation.related_model._base_manager.using(using).filter(
            **{f"{field.name}__in": rows.values("pk")}
        )
        if relation.on_delete is models.CASCADE:
            pointing.delete()
        elif relation.on_delete is models.SET_NULL:
            pointing.update(**{field.name: None})
        elif relation.on_delete is models.SET_DEFAULT:
            pointing.update(**{field.name: field.get_default()})
    return True


def purge_by_policy(
    *,
    older_than: int | None = None,
    statuses: list[str] | None = None,
    triggers: list[str] | None = None,
    bodies_only: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PurgeReport:
    """One purge as ``MAILOPS`` configures it (the command's and the task's entry point).

    ``older_than`` (days) replaces ``RETENTION`` for rows, or with
    ``bodies_only`` replaces ``BODY_RETENTION``; ``statuses`` and
    ``triggers`` narrow which rows go. With nothing configured and no
    ``older_than``, nothing is deleted.
    """
    body_days = get_setting("BODY_RETENTION")
    if bodies_only:
        rules: list[PurgeRule] = []
        body_days = older_than if older_than is not None else body_days
    else:
        rules = purge_rules(
            retention=get_setting("RETENTION"),
            older_than=older_than,
            statuses=statuses,
            triggers=triggers,
        )
    return purge_mail_log(
        rules=rules,
        body_days=body_days,
        batch_size=get_setting("PURGE_BATCH_SIZE"),
        pause=float(get_setting("PURGE_PAUSE")),
        dry_run=dry_run,
        progress=progress,
        sleep=sleep,
    )
