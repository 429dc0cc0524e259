"""The mail log list stays honest and cheap when the log is large.

Counting stops at ``MailLogAdmin.count_limit`` (lowered here so a handful of
rows is "large"), pages are read key-first, and search goes through indexes
(on PostgreSQL, the prefix indexes of migration 0005).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from mailops import stats
from mailops.admin import MailLogAdmin
from mailops.models import MailLog, MailStatus
from tests.maillog_fixtures import (
    CHANGELIST,
    changelist_rows,
    make_log,
)

pytestmark = pytest.mark.django_db
UTC = ZoneInfo("UTC")


def make_timeline(count: int) -> list[MailLog]:
    """``count`` rows one hour apart, newest first."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    rows = [
        make_log(recipient=f"r{i}@example.com", created_at=start + timedelta(hours=i))
        for i in range(count)
    ]
    return rows[::-1]


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(MailLogAdmin, "count_limit", 3)
    monkeypatch.setattr(MailLogAdmin, "search_count_limit", 3)
    return 3


def test_past_the_count_limit_the_summary_says_more_than_instead_of_counting(
    auditor: Client, small_limit: int
) -> None:
    make_timeline(5)

    response = auditor.get(CHANGELIST)

    summary = response.context["mailops_summary"]
    assert (summary.complete, summary.more_than, summary.counts) == (False, 3, {})
    html = response.content.decode()
    assert "More than 3 entries" in html
    assert 'data-status="sent"' not in html
    # The pagination does not present the lower bound as the count.
    assert "More than 3 entries; the pages cover the first 3." in html
    assert "3 mail log" not in html
    # "Select all" names no number it cannot vouch for.
    assert "Select all matching entries (more than 3)" in html
    assert response.context["selection_note_all"] == ("All matching entries selected (more than 3)")


def test_under_the_count_limit_the_page_counts_as_django_does(
    auditor: Client, small_limit: int
) -> None:
    make_timeline(3)

    response = auditor.get(CHANGELIST, {"q": "r"})

    html = response.content.decode()
    assert response.context["mailops_summary"].counts == {"sent": 3}
    assert "3 results" in html  # Django's search note
    assert "More than" not in html


def test_a_search_past_the_count_limit_drops_the_result_count_note(
    auditor: Client, small_limit: int
) -> None:
    make_timeline(5)

    html = auditor.get(CHANGELIST, {"q": "r"}).content.decode()

    assert " results (" not in html
    assert "More than 3 entries" in html


def test_a_search_stops_counting_sooner_than_a_filter(
    auditor: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each match of a search is confirmed by reading its row: its bound is lower.
    monkeypatch.setattr(MailLogAdmin, "count_limit", 10)
    monkeypatch.setattr(MailLogAdmin, "search_count_limit", 2)
    make_timeline(4)

    listed = auditor.get(CHANGELIST)
    searched = auditor.get(CHANGELIST, {"q": "r"})

    assert listed.context["mailops_summary"].counts == {"sent": 4}
    summary = searched.context["mailops_summary"]
    assert (summary.complete, summary.more_than) == (False, 2)
    assert "More than 2 entries; the pages cover the first 2." in searched.content.decode()


def test_a_search_is_charted_only_up_to_its_count_limit(
    auditor: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MailLogAdmin, "search_count_limit", 2)
    make_log(recipient="ann@example.com", status=MailStatus.FAILED)
    for n in range(3):
        make_log(recipient=f"bob{n}@example.com")

    few = auditor.get(CHANGELIST, {"q": "ann@"})
    many = auditor.get(CHANGELIST, {"q": "bob"})

    chart = few.context["mailops_chart"]
    assert (chart.total_sent, chart.total_failed) == (0, 1)  # the matches only
    assert many.context["mailops_chart"] is None
    assert (
        "The chart of sent and failed per day is drawn for searches with up to 2 matches."
        in many.content.decode()
    )
    assert "mailops-chart-skipped" not in few.content.decode()


def test_past_the_count_limit_the_pages_cover_the_first_rows(
    auditor: Client, small_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 2)
    rows = make_timeline(5)

    first = auditor.get(CHANGELIST)
    second = auditor.get(CHANGELIST, {"p": 2})
    beyond = auditor.get(CHANGELIST, {"p": 3})

    assert [r.pk for r in changelist_rows(first)] == [r.pk for r in rows[:2]]
    assert [r.pk for r in changelist_rows(second)] == [rows[2].pk]
    assert beyond.status_code == 302  # Django's "invalid page" redirect, not an error


@pytest.mark.parametrize("few_rows_below", [0, stats.EXACT_SPAN_BELOW])
def test_each_page_lists_its_rows_newest_first(
    auditor: Client, monkeypatch: pytest.MonkeyPatch, few_rows_below: int
) -> None:
    # Both ways of finding a page's keys: through the filter's own rows
    # (a short list) and straight from the ordered list.
    monkeypatch.setattr(stats, "EXACT_SPAN_BELOW", few_rows_below)
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 3)
    rows = make_timeline(7)
    make_log(status=MailStatus.FAILED, recipient="other@example.com")

    pages = [
        [r.pk for r in changelist_rows(auditor.get(CHANGELIST, {"q": "r", "p": p}))]
        for p in (1, 2, 3)
    ]

    assert pages == [[r.pk for r in rows[i : i + 3]] for i in (0, 3, 6)]


def test_a_page_reads_its_keys_then_its_rows(
    auditor: Client, monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 2)
    make_timeline(5)

    # Session, user, permissions (2), mailers, count, per status, span, keys,
    # rows, chart, the first day not closed by a purge (the daily roll-up).
    with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(12):
        auditor.get(CHANGELIST, {"p": 2})

    keys = [q["sql"] for q in queries if q["sql"].startswith('SELECT "mailops_maillog"."id" AS')]
    assert len(keys) == 1
    assert "auth_user" not in keys[0]  # the users are joined for the page's rows only


# --- search --------------------------------------------------------------------------


def test_search_matches_a_long_subject_by_the_whole_term(auditor: Client) -> None:
    shared = "Relay check " + "x" * 250  # longer than the indexed prefix
    make_log(recipient="long@example.com", subject=shared + "A" * 40)
    make_log(recipient="other@example.com", subject=shared + "B" * 40)

    def found(term: str) -> set[str]:
        response = auditor.get(CHANGELIST, {"q": term})
        return {log.recipient for log in changelist_rows(response)}

    assert found(shared + "AAA") == {"long@example.com"}
    assert found((shared + "bb").upper()) == {"other@example.com"}
    assert found(shared[:100].lower()) == {"long@example.com", "other@example.com"}


def test_the_search_query_is_answered_by_indexes() -> None:
    make_log(recipient="alice@example.com", subject="Quarterly relay check")
    queryset, _ = MailLogAdmin(MailLog, admin.site).get_search_results(
        None,  # type: ignore[arg-type]
        MailLog.objects.all(),
        "Quarterly",
    )
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A tiny table is read whole anyway; make the planner show what it
            # would use on a large one.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())

    assert [log.recipient for log in queryset] == ["alice@example.com"]
    # Every alternative of the search has an index (no reading the whole table).
    for index in (
        "maillog_recipient_prefix_idx",
        "maillog_subject_prefix_idx",
        "maillog_message_id_idx",
        "maillog_esp_id_idx",
    ):
        assert index in plan, plan


@pytest.mark.parametrize(
    ("recent_window", "sorted_matches"),
    [(5, 100), (2, 100), (2, 1)],
    ids=["among-the-newest", "matches-sorted", "index-walked"],
)
def test_a_long_search_lists_its_newest_matches_whichever_way_they_are_found(
    auditor: Client, monkeypatch: pytest.MonkeyPatch, recent_window: int, sorted_matches: int
) -> None:
    from mailops.admin import paginator

    # Counted up to 2 of the 3 matches: the pages cover the newest two.
    monkeypatch.setattr(MailLogAdmin, "search_count_limit", 2)
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 1)
    monkeypatch.setattr(paginator, "RECENT_WINDOW", recent_window)
    monkeypatch.setattr(paginator, "SORTED_MATCHES", sorted_matches)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    # Old matches, then newer entries the search does not find.
    matches = [
        make_log(recipient=f"bob{i}@example.com", created_at=start + timedelta(hours=i))
        for i in range(3)
    ][::-1]
    for i in range(3):
        make_log(recipient=f"ann{i}@example.com", created_at=start + timedelta(days=1, hours=i))

    pages = [
        [r.pk for r in changelist_rows(auditor.get(CHANGELIST, {"q": "bob", "p": p}))]
        for p in (1, 2)
    ]

    assert pages == [[matches[0].pk], [matches[1].pk]]


def test_a_long_search_sorted_oldest_first_lists_its_oldest_matches(
    auditor: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MailLogAdmin, "search_count_limit", 2)
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 1)
    rows = make_timeline(3)[::-1]  # oldest first

    pages = [
        [r.pk for r in changelist_rows(auditor.get(CHANGELIST, {"q": "r", "o": "1", "p": p}))]
        for p in (1, 2)
    ]

    assert pages == [[rows[0].pk], [rows[1].pk]]
