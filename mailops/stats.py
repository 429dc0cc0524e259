"""The numbers above the mail log: counts per status and sent vs failed per day.

Pure functions over a ``MailLog`` queryset (one aggregate query each) and
over plain data (the chart's geometry), so the admin stays a thin layer and
each piece is tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from .models import ACCEPTED_STATUSES, MailStatus

# Display order of the summary: the lifecycle, then the terminal outcomes.
STATUS_ORDER: tuple[str, ...] = tuple(MailStatus.values)


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class LogSummary:
    """What a filtered mail log holds: rows per status and the time they span."""

    counts: dict[str, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    @property
    def total(self) -> int:
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


# Below this many filtered rows the first/last times are read from those rows
# themselves (see summarize()).
EXACT_SPAN_BELOW = 5000


def summarize(queryset: QuerySet[Any], *, exact_span_below: int = EXACT_SPAN_BELOW) -> LogSummary:
    """Counts per status plus first/last ``created_at``, in two queries.

    The total doubles as the changelist paginator's count and the time span
    feeds the date hierarchy, so the page reads the filtered rows once.
    ``COUNT(*)`` (not ``COUNT(id)``) lets the database answer from an index
    on ``status`` alone. The first/last times are a separate ``MIN``/``MAX``:
    for many rows an index on ``created_at`` answers it from its two ends
    (putting it in the ``GROUP BY`` would read every row's time); for few
    rows it reads just those rows (a ``LIMIT`` keeps the database from
    walking the whole time index looking for a rare match).
    """
    queryset = queryset.order_by()
    rows = queryset.values("status").annotate(n=Count("*"))
    counts = {row["status"]: row["n"] for row in rows}
    total = sum(counts.values())
    if not total:
        return LogSummary(counts=counts)
    source = queryset if total >= exact_span_below else queryset[:total]
    span = source.aggregate(first=Min("created_at"), last=Max("created_at"))
    return LogSummary(counts=counts, first=span["first"], last=span["last"])


@dataclass(frozen=True)
class DayOutcome:
    day: date
    sent: int
    failed: int


def daily_outcomes(
    queryset: QuerySet[Any], *, days: int = 14, today: date | None = None
) -> list[DayOutcome]:
    """Messages accepted and failed per day (current time zone), oldest first.

    ``days`` entries ending with ``today``; days without rows are zeros.
    "Sent" counts every accepted status (sent, delivered, deferred, bounced,
    complained): the mailer took the message. One query over the period.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, time.min))
    rows = (
        queryset.order_by()
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            # Counting "status" (never null) lets an index on (status, created_at)
            # answer without reading the rows.
            sent=Count("status", filter=Q(status__in=ACCEPTED_STATUSES)),
            failed=Count("status", filter=Q(status=MailStatus.FAILED)),
        )
    )
    by_day = {row["day"]: (row["sent"], row["failed"]) for row in rows}
    result = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        sent, failed = by_day.get(day, (0, 0))
        result.append(DayOutcome(day=day, sent=sent, failed=failed))
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
