"""The daily roll-up (``MailDailyCount``): the log's numbers, kept when its rows go.

A purge *closes* every day before its newest cutoff first: it counts that
day's rows per mailer, trigger and status into ``MailDailyCount`` and adds
the day's marker row, in one transaction per few days. Closed days form a
prefix of the calendar (everything before :func:`closed_until`); readers take
closed days from here and the later days from the rows, so the chart and
the summary show the same numbers before and after a purge. A closed day's
counts are final: a row of that day that changes status afterwards (a late
bounce) no longer moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import Count, Max, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from mailops.models import MailDailyCount, MailLog
from mailops.retention.batches import purge_transaction
from mailops.retention.policy import local_midnight

# Days counted per query and transaction while closing (bounded work each).
DAYS_PER_STEP = 7


def _markers(using: str) -> QuerySet[MailDailyCount]:
    return MailDailyCount.objects.using(using).filter(mailer="", trigger="", status="")


def closed_until(*, using: str = "default") -> date | None:
    """The first day not closed (every earlier day is), or None if none is."""
    last = _markers(using).aggregate(last=Max("day"))["last"]
    return last + timedelta(days=1) if last else None


def close_days(until: date, *, using: str = "default") -> int:
    """Count and close every day before ``until`` not closed yet; returns the days closed."""
    start = closed_until(using=using)
    if start is None:
        first: datetime | None = (
            MailLog.objects.using(using)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if first is None or timezone.localdate(first) >= until:
            return 0
        start = timezone.localdate(first)
    closed = 0
    while start < until:
        end = min(start + timedelta(days=DAYS_PER_STEP), until)
        _close(start, end, using=using)
        closed += (end - start).days
        start = end
    return closed


def _close(start: date, end: date, *, using: str) -> None:
    """Count the days from ``start`` to ``end`` (excluded) and mark them closed."""
    counted = (
        MailLog.objects.using(using)
        .filter(created_at__gte=local_midnight(start), created_at__lt=local_midnight(end))
        .order_by()
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "mailer", "trigger", "status")
        .annotate(n=Count("*"))
    )
    sql, params = counted.query.get_compiler(using).as_sql()
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(MailDailyCount._meta.db_table)
    columns = ", ".join(quote(name) for name in ("day", "mailer", "trigger", "status", "count"))
    chosen = ", ".join(quote(name) for name in ("day", "mailer", "trigger", "status", "n"))
    days = (end - start).days
    markers = [MailDailyCount(day=start + timedelta(days=n)) for n in range(days)]
    # The roll-up's commit need not wait for the disk either: its WAL comes
    # before any batch that deletes these days' rows, so no crash can keep a
    # deletion and lose the counts.
    with purge_transaction(using):
        with connection.cursor() as cursor:
            # One INSERT ... SELECT: the counts never pass through Python.
            # Two purges closing the same day count the same rows: the
            # second's are dropped as duplicates, not an IntegrityError.
            # ("WHERE true": SQLite's parser needs it before ON CONFLICT.)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 (quoted names, Django's SQL)
                f"SELECT {chosen} FROM ({sql}) AS counted WHERE true "
                "ON CONFLICT DO NOTHING",
                params,
            )
        MailDailyCount.objects.using(using).bulk_create(markers, ignore_conflicts=True)


def closed_counts(
    *, using: str = "default", filters: dict[str, Any] | None = None
) -> QuerySet[MailDailyCount]:
    """Count rows of closed days (markers left out), narrowed by ``filters`` (field lookups)."""
    return (
        MailDailyCount.objects.using(using).exclude(status="").filter(**(filters or {})).order_by()
    )


@dataclass(frozen=True)
class ClosedDays:
    """The roll-up's counts (narrowed like a list) and the first day not closed."""

    counts: QuerySet[MailDailyCount]
    until: date

    def by_status(self) -> dict[str, int]:
        """``{status: n}`` over every closed day."""
        rows = self.counts.filter(day__lt=self.until).values("status").annotate(n=Sum("count"))
        return {row["status"]: int(row["n"]) for row in rows if row["n"]}


def closed_days(
    *, using: str = "default", filters: dict[str, Any] | None = None
) -> ClosedDays | None:
    """The closed days' counts narrowed by ``filters``; None if no day is closed (one query)."""
    until = closed_until(using=using)
    if until is None:
        return None
    return ClosedDays(counts=closed_counts(using=using, filters=filters), until=until)
