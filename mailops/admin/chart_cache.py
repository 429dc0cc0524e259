"""The mail log chart's earlier days, kept in Django's cache between page loads."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db.models import QuerySet
from django.utils import timezone

from mailops.conf import get_setting
from mailops.retention.history import ClosedDays
from mailops.stats import DayOutcome, daily_outcomes

logger = logging.getLogger(__name__)


def cached_daily_outcomes(
    queryset: QuerySet[Any],
    *,
    days: int = 14,
    history: ClosedDays | None = None,
    timeout: int | None = None,
) -> list[DayOutcome]:
    """:func:`daily_outcomes` up to today, the days before today read from Django's cache.

    Counting a day's rows reads every entry of that day (27,000 index
    entries a day at ten million rows a year: the chart's two weeks cost
    more than the rest of the page). Earlier days change only when a late
    event (a bounce, a delivery report) moves a row, so their counts are
    kept for ``timeout`` seconds (``MAILOPS["CHART_CACHE_SECONDS"]``) per
    list (its filters and search), day and time zone; today is always
    counted from the rows. A ``timeout`` of 0 counts every day every time.
    """
    if timeout is None:
        timeout = int(get_setting("CHART_CACHE_SECONDS"))
    today = timezone.localdate()
    if timeout <= 0 or days < 2:
        return daily_outcomes(queryset, days=days, today=today, history=history)
    yesterday = today - timedelta(days=1)
    try:
        key = _key(queryset, days=days - 1, until=yesterday, history=history)
    except EmptyResultSet:
        # A list that can match nothing (e.g. ``pk__in=[]``) has no SQL to name it.
        return daily_outcomes(queryset, days=days, today=today, history=history)
    earlier = _read(key, days=days - 1)
    if earlier is None:
        # One query for every day, as without the cache; the earlier ones are kept.
        outcomes = daily_outcomes(queryset, days=days, today=today, history=history)
        _write(key, outcomes[:-1], timeout=timeout)
        return outcomes
    return [*earlier, *daily_outcomes(queryset, days=1, today=today, history=history)]


# A cache that is down costs the counting, never the page (the console people
# open when things are broken). Entries are plain tuples, checked on reading,
# so an entry another version of mailops wrote is simply not used.


def _read(key: str, *, days: int) -> list[DayOutcome] | None:
    try:
        kept = cache.get(key)
    except Exception as error:  # noqa: BLE001 - any cache backend's outage
        logger.warning("The mail log chart's cache could not be read: %r", type(error))
        return None
    try:
        earlier = [DayOutcome(date.fromisoformat(d), int(s), int(f)) for d, s, f in kept or ()]
    except (TypeError, ValueError):
        return None
    return earlier if len(earlier) == days else None


def _write(key: str, outcomes: list[DayOutcome], *, timeout: int) -> None:
    entry = [(outcome.day.isoformat(), outcome.sent, outcome.failed) for outcome in outcomes]
    try:
        cache.set(key, entry, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - any cache backend's outage
        logger.warning("The mail log chart's cache could not be written: %r", type(error))


def _key(queryset: QuerySet[Any], *, days: int, until: date, history: ClosedDays | None) -> str:
    # The list's own SQL names its filters and search; the roll-up's first
    # open day changes when a purge closes days (and so moves what is read where).
    sql, params = queryset.order_by().query.sql_with_params()
    what = repr(
        (
            queryset.db,
            sql,
            params,
            days,
            until,
            timezone.get_current_timezone_name(),
            history.until if history is not None else None,
        )
    )
    return f"mailops:chart:{hashlib.sha256(what.encode()).hexdigest()}"
