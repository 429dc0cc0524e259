"""The mail log's paginator: counts from the per-status summary, pages by primary key."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connections
from django.utils.functional import cached_property

from mailops import stats


class SummaryPaginator(Paginator):
    """Counts through :func:`mailops.stats.summarize`: one query for both.

    The changelist needs the number of filtered rows (pagination) and the
    page shows counts per status for the same rows; the total of the
    per-status counts is that number. Past ``count_limit`` rows the count
    is ``count_limit``: the pages cover the first that many rows.
    """

    def __init__(
        self,
        *args: Any,
        count_limit: int = stats.COUNT_LIMIT,
        span_source: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count_limit = count_limit
        # Where a long list's first and last times are read (see stats.summarize).
        self.span_source = span_source

    @cached_property
    def summary(self) -> stats.LogSummary:
        queryset: Any = self.object_list
        return stats.summarize(queryset, limit=self.count_limit, span_source=self.span_source)

    @cached_property
    def count(self) -> int:
        return self.summary.total

    def page(self, number: Any) -> Page:
        """Page ``number``: its primary keys first, then those rows.

        The primary keys of a page come from an index (the filter's or the
        time index) without reading the users joined for display; the rows
        are then fetched by primary key. In one query, a misestimate by the
        database can join every matching row before sorting (seconds for a
        search matching a thousand rows) and a later page reads every row it
        skips.

        Few matching rows spread over the log (a search, a rare status over a
        long period) can also make the database walk the time index from the
        newest entry, expecting to meet a page of matches soon, and read most
        of the table. The summary says how many rows match: the keys of a
        short list are taken from ``pk IN (its pks, LIMIT total)``, which the
        database finds through the filter's own indexes first, then sorts.
        """
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        queryset: Any = self.object_list
        keys = queryset
        total = self.summary.total
        if (
            self.summary.complete
            and total < stats.EXACT_SPAN_BELOW
            and connections[queryset.db].features.allow_sliced_subqueries_with_in
        ):
            keys = queryset.filter(pk__in=queryset.order_by().values("pk")[:total])
        pks = list(keys.values_list("pk", flat=True)[bottom:top])
        return Page(queryset.filter(pk__in=pks), number, self)
