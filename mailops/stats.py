"""The numbers above the mail log: counts per status and sent vs failed per day.

Pure functions over a ``MailLog`` queryset (one aggregate query each) and
over plain data (the chart's geometry), so the admin stays a thin layer and
each piece is tested on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from mailops.models import ACCEPTED_STATUSES, MailStatus
from mailops.retention.history import ClosedDays
from mailops.retention.policy import local_midnight

# Display order of the summary: the lifecycle, then the terminal outcomes.
STATUS_ORDER: tuple[str, ...] = tuple(MailStatus.values)


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class LogSummary:
    """What a filtered mail log holds: rows per status and the time they span.

    ``more_than`` is set when the rows were not all counted (see
    :func:`summarize`): there are more than that many, and ``counts`` is empty.
    """

    counts: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None
    more_than: int | None = None

    @property
    def complete(self) -> bool:
        """Whether every row was counted (``counts`` and ``total`` are exact)."""
        return self.more_than is None

    @property
    def total(self) -> int:
        """The number of rows; a lower bound (``more_than``) when not complete."""
        if self.more_than is not None:
            return self.more_than
        return sum(self.counts.values())

    def rows(self) -> list[StatusCount]:
        """Non-zero statuses in lifecycle order; unknown values (old data) last."""
        labels = dict(MailStatus.choices)
        known = [s for s in STATUS_ORDER if self.counts.get(s)]
        unknown = sorted(s for s in self.counts if s not in labels and self.counts[s])
        return [
            StatusCount(status=s, label=str(labels.get(s, s)), count=self.counts[s])
            for s in known + unknown
        ]


# Counting stops after this many rows: a page load reads at most this many
# to count, whatever the size of the log. Above it the summary says "more
# than ..." and the list pages through the first rows of the current order.
COUNT_LIMIT = 20_000

# The same bound for a searched list: each match is confirmed by reading its
# row, so counting costs more per row than a filter's index-only count.
SEARCH_COUNT_LIMIT = 1000

# Below this many filtered rows the first/last times (see summarize()) and the
# admin's page of rows are read from those rows themselves, found through the
# filter's own indexes, not by walking the time index.
EXACT_SPAN_BELOW = 5000


def count_up_to(queryset: QuerySet[Any], limit: int) -> int:
    """The number of rows, or ``limit + 1`` if there are more than ``limit``.

    ``SELECT COUNT(*) FROM (SELECT ... LIMIT limit + 1)``: the database stops
    after that many rows, and reads them from an index alone when one
    matches the filters (the log's filters each have one).
    """
    return queryset.order_by().values("pk")[: limit + 1].count()


def summarize(
    queryset: QuerySet[Any],
    *,
    limit: int = COUNT_LIMIT,
    exact_span_below: int = EXACT_SPAN_BELOW,
    span_source: QuerySet[Any] | None = None,
) -> LogSummary:
    """Counts per status plus first/last ``created_at``.

    The total doubles as the changelist paginator's count and the time span
    feeds the date hierarchy. Counting stops after ``limit`` rows
    (:func:`count_up_to`); with more, the summary holds no counts per status
    and ``more_than=limit``, so a page load costs the same at any log size.

    Queries: the bounded count; then, for at most ``limit`` rows, the counts
    per status; then the span: below ``exact_span_below`` rows ``MIN`` and
    ``MAX`` over just those rows (a ``LIMIT`` keeps the database from walking
    the whole time index looking for a rare match), above it the first and
    the last time, each read from one end of the time index (one query
    asking for both would read every row on SQLite), of ``span_source``
    if given: a search's matches can be few and far from either end, and
    the database would walk the index past every other row to find them.
    """
    queryset = queryset.order_by()
    found = count_up_to(queryset, limit)
    if not found:
        return LogSummary()
    if found > limit:
        counts: dict[str, int] = {}
        more_than: int | None = limit
    else:
        rows = queryset.values("status").annotate(n=Count("*"))
        counts = {row["status"]: row["n"] for row in rows}
        more_than = None
    if more_than is None and found < exact_span_below:
        span = queryset[:found].aggregate(first=Min("created_at"), last=Max("created_at"))
        first, last = span["first"], span["last"]
    else:
        times = (queryset if span_source is None else span_source.order_by()).values_list(
            "created_at", flat=True
        )
        first = times.order_by("created_at").first()
        last = times.order_by("-created_at").first()
    return LogSummary(counts=counts, first=first, last=last, more_than=more_than)


def summarize_with_history(
    queryset: QuerySet[Any],
    history: ClosedDays | None,
    *,
    limit: int = COUNT_LIMIT,
) -> LogSummary | None:
    """Counts per status with closed days read from the daily roll-up, or None.

    None when no day is closed or the list's filters have no counterpart in
    the roll-up (``history`` None, see
    :func:`mailops.retention.history.closed_days`): then :func:`summarize`
    over the rows is the answer. Otherwise the closed days come from ``history`` and the
    later ones from the rows, so a purge leaves the numbers as they were.
    No span (``first``/``last``): those describe the rows that are listed.
    """
    if history is None:
        return None
    recent = summarize(queryset.filter(created_at__gte=local_midnight(history.until)), limit=limit)
    if not recent.complete:
        return LogSummary(more_than=recent.more_than)
    counts = Counter(history.by_status())
    counts.update(recent.counts)
    return LogSummary(counts={status: n for status, n in counts.items() if n})


CHARTED_STATUSES = tuple(sorted(ACCEPTED_STATUSES | {MailStatus.FAILED}))


@dataclass(frozen=True)
class DayOutcome:
    day: date
    sent: int
    failed: int


def daily_outcomes(
    queryset: QuerySet[Any],
    *,
    days: int = 14,
    today: date | None = None,
    history: ClosedDays | None = None,
) -> list[DayOutcome]:
    """Messages accepted and failed per day (current time zone), oldest first.

    ``days`` entries ending with ``today``; days without rows are zeros.
    "Sent" counts every accepted status (sent, delivered, deferred, bounced,
    complained): the mailer took the message. One query over the period,
    plus one over ``history`` (the daily roll-up, narrowed like ``queryset``)
    for the days already closed, which are not read from the rows.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    # Local midnights, computed here (daylight saving time included): the
    # query compares times with them instead of converting every row's time
    # to a local date (a Python function per row on SQLite).
    midnights = [
        timezone.make_aware(datetime.combine(start + timedelta(days=n), time.min))
        for n in range(days + 1)
    ]
    day_index = Case(
        *(When(created_at__lt=midnight, then=Value(n)) for n, midnight in enumerate(midnights[1:])),
        output_field=IntegerField(),
    )
    by_day: dict[int, tuple[int, int]] = {}
    from_rows = 0
    if history is not None and history.until > start:
        from_rows = min((history.until - start).days, days)
        totals = (
            history.counts.filter(day__gte=start, day__lt=start + timedelta(days=from_rows))
            .filter(status__in=CHARTED_STATUSES)
            .values("day")
            .annotate(
                sent=Sum("count", filter=Q(status__in=ACCEPTED_STATUSES)),
                failed=Sum("count", filter=Q(status=MailStatus.FAILED)),
            )
        )
        for total in totals:
            by_day[(total["day"] - start).days] = (total["sent"] or 0, total["failed"] or 0)
    # Only the counted statuses and the period: the (status, created_at) index
    # holds all the query reads, so the rows themselves are not read. These
    # conditions come first in the WHERE clause: given two ranges on the time
    # (this one and, say, a year picked in the date hierarchy), SQLite bounds
    # the index scan with the first it meets.
    period = queryset.model._default_manager.using(queryset.db).filter(
        created_at__gte=midnights[from_rows],
        created_at__lt=midnights[-1],
        status__in=CHARTED_STATUSES,
    )
    rows = (
        (period & queryset.order_by())
        .annotate(day_index=day_index)
        .values("day_index")
        .annotate(
            sent=Count("status", filter=Q(status__in=ACCEPTED_STATUSES)),
            failed=Count("status", filter=Q(status=MailStatus.FAILED)),
        )
    )
    if from_rows < days:
        by_day.update({row["day_index"]: (row["sent"], row["failed"]) for row in rows})
    result = []
    for n in range(days):
        sent, failed = by_day.get(n, (0, 0))
        result.append(DayOutcome(day=start + timedelta(days=n), sent=sent, failed=failed))
    return result


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int


@dataclass(frozen=True)
class ChartDay:
    day: date
    sent: Bar
    failed: Bar
    label_x: float


@dataclass(frozen=True)
class Chart:
    """Geometry of a grouped bar chart, in SVG user units; the template draws it."""

    width: int
    height: int
    baseline: float
    maximum: int
    days: list[ChartDay]

    @property
    def total_sent(self) -> int:
        return sum(d.sent.value for d in self.days)

    @property
    def total_failed(self) -> int:
        return sum(d.failed.value for d in self.days)


def chart(
    outcomes: Sequence[DayOutcome],
    *,
    width: int = 560,
    height: int = 120,
    label_height: int = 16,
) -> Chart:
    """Lay out one pair of bars (sent, failed) per day, scaled to the busiest day.

    A day with messages always gets a visible bar (at least one unit high),
    so a single failure among thousands of sends does not disappear.
    """
    maximum = max((max(o.sent, o.failed) for o in outcomes), default=0)
    plot_height = height - label_height
    slot = width / max(len(outcomes), 1)
    bar_width = slot * 0.38
    gap = slot * 0.08

    def bar(x: float, value: int) -> Bar:
        h = max(plot_height * value / maximum, 1.0) if value and maximum else 0.0
        return Bar(
            x=round(x, 2),
            y=round(plot_height - h, 2),
            width=round(bar_width, 2),
            height=round(h, 2),
            value=value,
        )

    days = []
    for index, outcome in enumerate(outcomes):
        left = index * slot + gap
        days.append(
            ChartDay(
                day=outcome.day,
                sent=bar(left, outcome.sent),
                failed=bar(left + bar_width, outcome.failed),
                label_x=round(index * slot + slot / 2, 2),
            )
        )
    return Chart(width=width, height=height, baseline=plot_height, maximum=maximum, days=days)
