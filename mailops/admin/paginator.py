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
        searched: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.count_limit = count_limit
        # A search's matches may be few and far from the newest entries.
        self.searched = searched

    @cached_property
    def summary(self) -> stats.LogSummary:
        queryset: Any = self.object_list
        # A long search's date hierarchy offers the whole log's periods: its
        # newest and oldest matches could take reading most of the log.
        whole_log = queryset.model._default_manager.using(queryset.db) if self.searched else None
        return stats.summarize(queryset, limit=self.count_limit, span_source=whole_log)

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
        pks = self._keys(queryset, bottom, top)
        return Page(queryset.filter(pk__in=pks), number, self)

    def _keys(self, queryset: Any, bottom: int, top: int) -> list[Any]:
        total = self.summary.total
        if not connections[queryset.db].features.allow_sliced_subqueries_with_in:
            return list(queryset.values_list("pk", flat=True)[bottom:top])
        if self.summary.complete and total < stats.EXACT_SPAN_BELOW:
            return _sorted_matches(queryset, total, bottom, top)
        if self.searched:
            return _search_keys(queryset, bottom, top)
        return list(queryset.values_list("pk", flat=True)[bottom:top])


# A long search's page is looked for among this many newest entries of the
# log first (a bounded walk of the time index, each row read to check the
# search: a search one row in ten matches fills ten pages there); if it is
# not there, among its matches found through its own indexes when there are
# at most SORTED_MATCHES.
RECENT_WINDOW = 5000
SORTED_MATCHES = 50_000


def counted_matches(queryset: Any, matches: int) -> Any:
    """``queryset`` read as its ``matches`` counted rows: found first (``pk IN`` a slice).

    A short list is then sorted or grouped among its own rows instead of
    walking the time index; where the database cannot take a sliced
    subquery, ``queryset`` as it is.
    """
    if not connections[queryset.db].features.allow_sliced_subqueries_with_in:
        return queryset
    # At least LIMIT 1: Django refuses an empty slice as a subquery.
    return queryset.filter(pk__in=queryset.order_by().values("pk")[: max(matches, 1)])


def _sorted_matches(queryset: Any, matches: int, bottom: int, top: int) -> list[Any]:
    """Keys ``bottom:top`` of a list of ``matches`` rows: found first, then sorted."""
    return list(counted_matches(queryset, matches).values_list("pk", flat=True)[bottom:top])


def _search_keys(queryset: Any, bottom: int, top: int) -> list[Any]:
    """Keys ``bottom:top`` of a search with more matches than were counted.

    Walking the time index from the newest entry finds a common prefix's
    page at once, but reads most of the log for one whose matches are all
    old (15 s at ten million rows). So the walk is bounded: the page is
    looked for among the newest ``RECENT_WINDOW`` entries (every row not
    among them is older than all that are); if it is not all there, and the
    search has at most ``SORTED_MATCHES`` matches, they are read through
    the search's own indexes (time and key only) and sorted here. Only a
    search with more matches, few of them recent, still walks the index;
    a list sorted oldest first is found as any other.
    """
    if [str(field) for field in queryset.query.order_by[:1]] != ["-created_at"]:
        return list(queryset.values_list("pk", flat=True)[bottom:top])
    log = queryset.model._default_manager.using(queryset.db)
    edge = list(
        log.order_by("-created_at", "-id").values_list("created_at", flat=True)[
            RECENT_WINDOW - 1 : RECENT_WINDOW
        ]
    )
    if edge:
        recent = list(
            queryset.filter(created_at__gte=edge[0]).values_list("pk", flat=True)[bottom:top]
        )
        if len(recent) == top - bottom:
            return recent
    matches = list(queryset.order_by().values_list("created_at", "pk")[: SORTED_MATCHES + 1])
    if len(matches) <= SORTED_MATCHES:
        # Newest first, the later key first among equal times: the list's order.
        matches.sort(reverse=True)
        return [pk for _, pk in matches[bottom:top]]
    return list(queryset.values_list("pk", flat=True)[bottom:top])
