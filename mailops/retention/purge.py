"""Delete what the retention policy no longer keeps, in short batches beside live sending.

Rows go in batches of ``PURGE_BATCH_SIZE`` primary keys, each in its own
short transaction (one ``DELETE ... RETURNING``, then what pointed at the
rows), with a rest after each (:class:`~mailops.retention.batches.Pace`:
``PURGE_PAUSE``, ``PURGE_PAUSE_RATIO``): senders insert and update rows
meanwhile, and no lock is held long. Before the first row goes, the days
being purged are closed into the daily roll-up
(:mod:`mailops.retention.history`), so the log's numbers survive.

What points at a deleted row follows its foreign key's ``on_delete``, done
in SQL where no Python is needed (:mod:`mailops.retention.dependants`): a
``MailEvent`` goes with its row, a ``Suppression`` (``SET_NULL``) keeps
its entry and loses the link. ``SendingProgress`` rows, which name a claim
token rather than a row, go once no row of that claim is in flight.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connections
from django.db.models import Count, Q, QuerySet
from django.db.models.sql import DeleteQuery
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, SendingProgress
from mailops.retention.batches import Pace, key_ranges, purge_transaction
from mailops.retention.dependants import deletes_in_sql, release_orphans
from mailops.retention.history import close_days
from mailops.retention.policy import PurgeRule, local_midnight, purge_rules, rows_matching
from mailops.retention.unmatched import purge_unmatched_bounces
from mailops.statuses import UNFINISHED_STATUSES

# Databases with DELETE ... RETURNING (PostgreSQL, SQLite 3.35+; Django asks 3.37).
RETURNING_VENDORS = frozenset(["postgresql", "sqlite"])


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry, would delete)."""

    dry_run: bool = False
    deleted: Counter[str] = field(default_factory=Counter)
    bodies_cleared: int = 0
    days_closed: int = 0
    batches: int = 0
    # Unmatched bounce reports, by kind (UnmatchedKind).
    unmatched_bounces: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "deleted": dict(sorted(self.deleted.items())),
            "deleted_total": self.total,
            "bodies_cleared": self.bodies_cleared,
            "unmatched_bounces": dict(sorted(self.unmatched_bounces.items())),
            "unmatched_bounces_total": sum(self.unmatched_bounces.values()),
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
    pace: Pace | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    using: str = "default",
) -> PurgeReport:
    """Delete the rows ``rules`` match, then clear bodies older than ``body_days``.

    ``dry_run`` counts instead (nothing is closed, deleted or cleared).
    ``pace`` rests after each batch that changed rows (default: no rest).
    """
    pace = pace or Pace()
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
        for first, last, share in key_ranges(logs, local_midnight(newest), batch_size):
            begun = pace.clock()
            deleted = _delete_batch(logs, doomed, (first, last), using=using)
            if deleted:
                report.deleted.update(deleted)
                report.batches += 1
                pace.rest(after=begun)
            if progress:
                progress(report.total, share)
    if bodies is not None and cleared_before is not None:
        for first, last, _share in key_ranges(logs, cleared_before, batch_size):
            begun = pace.clock()
            with purge_transaction(using):
                cleared = logs.filter(bodies, pk__gte=first, pk__lte=last).update(body="")
            if cleared:
                report.bodies_cleared += cleared
                report.batches += 1
                pace.rest(after=begun)
    _forget_finished_progress(using=using)
    return report


# Keys per DELETE on the lock-and-delete path: under SQLite's oldest limit
# of 999 parameters per statement, whatever PURGE_BATCH_SIZE is.
_KEYS_PER_STATEMENT = 900


def _delete_batch(
    logs: QuerySet[MailLog], doomed: Q, batch: tuple[int, int], *, using: str
) -> Counter[str]:
    """Delete one range's matching rows (and what depends on them); counts by status.

    The range and the filter name the rows (new rows get higher keys and
    today's time), not a list of thousands of keys. One ``DELETE ...
    RETURNING status`` deletes and counts them at once (a row whose status
    changes meanwhile is counted as it was deleted); then what pointed at
    them follows its ``on_delete`` (foreign keys are checked at commit).
    """
    with purge_transaction(using):
        rows = logs.filter(doomed, pk__gte=batch[0], pk__lte=batch[1])
        in_sql = deletes_in_sql(MailLog)
        if in_sql and connections[using].vendor in RETURNING_VENDORS:
            deleted = _delete_counting(rows, using=using)
            if deleted:
                release_orphans(MailLog, keys=batch, using=using)
            return deleted
        # Django's deletion (delete signals, PROTECT...), or a database
        # without DELETE ... RETURNING: lock and count first, then delete
        # exactly the rows locked (a row of the range that finishes sending
        # meanwhile is left for the next purge, not deleted uncounted).
        locked, deleted = _lock_and_count(rows, using=using)
        for start in range(0, len(locked), _KEYS_PER_STATEMENT):
            chosen = logs.filter(pk__in=locked[start : start + _KEYS_PER_STATEMENT])
            if in_sql:
                chosen._raw_delete(using)
            else:
                chosen.only("pk").delete()
        if deleted and in_sql:
            release_orphans(MailLog, keys=batch, using=using)
        return deleted


def _delete_counting(rows: QuerySet[MailLog], *, using: str) -> Counter[str]:
    """Delete ``rows`` by one statement; how many per status (counted by the database)."""
    # As QuerySet._raw_delete() builds its DELETE, here given a RETURNING.
    query = rows.query.clone()
    query.__class__ = DeleteQuery
    sql, params = query.get_compiler(using).as_sql()
    connection = connections[using]
    status = connection.ops.quote_name("status")
    with connection.cursor() as cursor:
        # Django's compiled SQL and a quoted column name: no text from outside.
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH gone AS ({sql} RETURNING {status}) "  # noqa: S608
                f"SELECT {status}, COUNT(*) FROM gone GROUP BY {status}",
                params,
            )
            return Counter(dict(cursor.fetchall()))
        cursor.execute(f"{sql} RETURNING {status}", params)
        return Counter(value for (value,) in cursor.fetchall())


def _lock_and_count(rows: QuerySet[MailLog], *, using: str) -> tuple[list[int], Counter[str]]:
    """Lock ``rows`` (where the database can): their keys, and how many per status."""
    locked = list(rows.select_for_update().values_list("pk", "status"))
    return [pk for pk, _status in locked], Counter(status for _pk, status in locked)


def _forget_finished_progress(*, using: str) -> int:
    """Delete progress rows no claim in flight needs (left by a crash); how many.

    Recovery reads a claim's progress rows only while rows of the claim are
    still in flight, and a progress row is only written under the lock of
    such a row (:mod:`mailops.sending.wire`): one whose claim has no row
    queued or sending is read by nobody, ever again.
    """
    in_flight = MailLog.objects.using(using).filter(status__in=UNFINISHED_STATUSES)
    leftovers = SendingProgress.objects.using(using).exclude(
        token__in=in_flight.values("claimed_by")
    )
    return int(leftovers.delete()[0])


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
    ``triggers`` narrow which rows go. Unmatched bounce reports follow
    ``UNMATCHED_BOUNCE_RETENTION`` (not with ``bodies_only``). With nothing
    configured and no ``older_than``, nothing is deleted.
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
    batch_size = get_setting("PURGE_BATCH_SIZE")
    pace = Pace(
        pause=float(get_setting("PURGE_PAUSE")),
        ratio=float(get_setting("PURGE_PAUSE_RATIO")),
        sleep=sleep,
    )
    report = purge_mail_log(
        rules=rules,
        body_days=body_days,
        batch_size=batch_size,
        pace=pace,
        dry_run=dry_run,
        progress=progress,
    )
    unmatched_days = get_setting("UNMATCHED_BOUNCE_RETENTION")
    if unmatched_days is not None and not bodies_only:
        report.unmatched_bounces, batches = purge_unmatched_bounces(
            days=unmatched_days, batch_size=batch_size, pace=pace, dry_run=dry_run
        )
        report.batches += batches
    return report
