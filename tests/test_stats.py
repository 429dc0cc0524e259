"""The numbers above the mail log: status counts, per-day outcomes, chart geometry."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from mailops import stats
from mailops.admin.chart_cache import cached_daily_outcomes
from mailops.models import MailLog, MailStatus
from tests.maillog_fixtures import make_log

UTC = ZoneInfo("UTC")


@pytest.mark.django_db
def test_summary_counts_each_status_and_the_time_span_in_three_queries(
    django_assert_num_queries,
) -> None:
    early = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    late = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
    make_log(status=MailStatus.SENT, created_at=late)
    make_log(status=MailStatus.SENT)
    make_log(status=MailStatus.FAILED, created_at=early)
    make_log(status=MailStatus.REJECTED, created_at=early + timedelta(days=1))

    # A bounded count, the counts per status, the first and last time.
    with django_assert_num_queries(3):
        summary = stats.summarize(MailLog.objects.filter(created_at__lt=late + timedelta(1)))

    assert summary.counts == {"sent": 1, "failed": 1, "rejected": 1}
    assert summary.total == 3
    assert (summary.first, summary.last) == (early, late)


@pytest.mark.django_db
@pytest.mark.parametrize("exact_span_below", [1, 10_000])
def test_the_time_span_is_the_same_read_from_the_index_or_from_the_rows(
    exact_span_below: int,
) -> None:
    times = [datetime(2025, 1, d, tzinfo=UTC) for d in (5, 2, 9)]
    for when in times:
        make_log(status=MailStatus.FAILED, created_at=when)
    make_log(status=MailStatus.SENT, created_at=datetime(2024, 1, 1, tzinfo=UTC))

    summary = stats.summarize(
        MailLog.objects.filter(status=MailStatus.FAILED), exact_span_below=exact_span_below
    )

    assert (summary.first, summary.last) == (min(times), max(times))


@pytest.mark.django_db
def test_summary_of_nothing_is_empty(django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        summary = stats.summarize(MailLog.objects.all())

    assert (summary.total, summary.first, summary.last, summary.rows()) == (0, None, None, [])


@pytest.mark.django_db
def test_counting_stops_after_the_limit_and_the_summary_says_more_than(
    django_assert_num_queries,
) -> None:
    times = [datetime(2025, 1, d, tzinfo=UTC) for d in (3, 9, 5, 1, 7)]
    for when in times:
        make_log(status=MailStatus.SENT, created_at=when)

    # The bounded count, then the first and the last time: no count per status.
    with django_assert_num_queries(3):
        summary = stats.summarize(MailLog.objects.all(), limit=4, exact_span_below=1)

    assert (summary.complete, summary.more_than, summary.total) == (False, 4, 4)
    assert (summary.counts, summary.rows()) == ({}, [])
    assert (summary.first, summary.last) == (min(times), max(times))


@pytest.mark.django_db
def test_a_list_of_exactly_the_limit_is_counted_in_full() -> None:
    for status in (MailStatus.SENT, MailStatus.SENT, MailStatus.FAILED):
        make_log(status=status)

    summary = stats.summarize(MailLog.objects.all(), limit=3)

    assert (summary.complete, summary.total, summary.counts) == (True, 3, {"sent": 2, "failed": 1})


def test_summary_rows_follow_the_lifecycle_and_keep_unknown_statuses() -> None:
    summary = stats.LogSummary(counts={"failed": 2, "legacy": 1, "queued": 4, "sent": 0})

    rows = summary.rows()

    assert [(r.status, r.count) for r in rows] == [("queued", 4), ("failed", 2), ("legacy", 1)]
    assert rows[0].label == "Queued"
    assert rows[-1].label == "legacy"


@pytest.mark.django_db
def test_daily_outcomes_count_accepted_as_sent_and_fill_quiet_days(settings) -> None:
    settings.TIME_ZONE = "UTC"
    today = date(2025, 5, 20)
    noon = datetime(2025, 5, 20, 12, tzinfo=UTC)
    for status in (MailStatus.SENT, MailStatus.DELIVERED, MailStatus.BOUNCED, MailStatus.FAILED):
        make_log(status=status, created_at=noon)
    make_log(status=MailStatus.REJECTED, created_at=noon)  # neither sent nor failed
    make_log(status=MailStatus.FAILED, created_at=noon - timedelta(days=2))
    make_log(status=MailStatus.SENT, created_at=noon - timedelta(days=14))  # too old

    outcomes = stats.daily_outcomes(MailLog.objects.all(), days=14, today=today)

    assert len(outcomes) == 14
    assert outcomes[0].day == date(2025, 5, 7)
    assert outcomes[-1] == stats.DayOutcome(day=today, sent=3, failed=1)
    assert outcomes[-3] == stats.DayOutcome(day=date(2025, 5, 18), sent=0, failed=1)
    assert sum(o.sent + o.failed for o in outcomes[:-3]) == 0


@pytest.mark.django_db
def test_daily_outcomes_count_only_the_rows_of_the_filtered_list(settings) -> None:
    settings.TIME_ZONE = "UTC"
    noon = datetime(2025, 5, 20, 12, tzinfo=UTC)
    make_log(status=MailStatus.FAILED, mailer="gmail", created_at=noon)
    make_log(status=MailStatus.SENT, mailer="gmail", created_at=noon)
    make_log(status=MailStatus.FAILED, mailer="default", created_at=noon)
    # Another range on the time, as the date hierarchy adds.
    gmail_this_year = MailLog.objects.filter(mailer="gmail", created_at__year=2025)

    outcomes = stats.daily_outcomes(gmail_this_year, days=1, today=date(2025, 5, 20))

    assert outcomes == [stats.DayOutcome(day=date(2025, 5, 20), sent=1, failed=1)]


@pytest.mark.django_db
def test_daily_outcomes_use_the_current_time_zone_for_day_boundaries(settings) -> None:
    settings.TIME_ZONE = "America/New_York"
    # 02:00 UTC on the 21st is still the evening of the 20th in New York.
    make_log(status=MailStatus.FAILED, created_at=datetime(2025, 5, 21, 2, tzinfo=UTC))

    with timezone.override("America/New_York"):
        outcomes = stats.daily_outcomes(MailLog.objects.all(), days=2, today=date(2025, 5, 21))

    assert [(o.day.day, o.failed) for o in outcomes] == [(20, 1), (21, 0)]


@pytest.mark.django_db
def test_daily_outcomes_follow_daylight_saving_time(settings) -> None:
    settings.TIME_ZONE = "America/New_York"
    # 2025-03-09 has 23 hours in New York (clocks go forward at 02:00).
    make_log(status=MailStatus.SENT, created_at=datetime(2025, 3, 9, 4, 30, tzinfo=UTC))  # 8th
    make_log(status=MailStatus.SENT, created_at=datetime(2025, 3, 9, 5, 0, tzinfo=UTC))  # 9th
    make_log(status=MailStatus.FAILED, created_at=datetime(2025, 3, 10, 3, 30, tzinfo=UTC))  # 9th
    make_log(status=MailStatus.FAILED, created_at=datetime(2025, 3, 10, 4, 0, tzinfo=UTC))  # 10th

    with timezone.override("America/New_York"):
        outcomes = stats.daily_outcomes(MailLog.objects.all(), days=3, today=date(2025, 3, 10))

    assert [(o.day.day, o.sent, o.failed) for o in outcomes] == [(8, 1, 0), (9, 1, 1), (10, 0, 1)]


def test_daily_outcomes_need_at_least_one_day() -> None:
    with pytest.raises(ValueError, match="days"):
        stats.daily_outcomes(MailLog.objects.none(), days=0)


def test_chart_scales_bars_to_the_busiest_day_and_keeps_small_counts_visible() -> None:
    outcomes = [
        stats.DayOutcome(day=date(2025, 5, 1), sent=1000, failed=1),
        stats.DayOutcome(day=date(2025, 5, 2), sent=500, failed=0),
    ]

    chart = stats.chart(outcomes, width=200, height=116, label_height=16)

    first, second = chart.days
    assert chart.maximum == 1000
    assert chart.baseline == 100
    assert (first.sent.height, first.sent.y) == (100.0, 0.0)
    assert second.sent.height == 50.0
    assert first.failed.height == 1.0  # 0.1 would vanish
    assert (second.failed.height, second.failed.y) == (0.0, 100.0)
    assert first.failed.x > first.sent.x
    assert second.sent.x >= first.failed.x + first.failed.width
    assert second.label_x == 150.0
    assert (chart.total_sent, chart.total_failed) == (1500, 1)


def test_chart_of_quiet_days_has_no_bars() -> None:
    chart = stats.chart([stats.DayOutcome(day=date(2025, 5, 1), sent=0, failed=0)])

    assert chart.maximum == 0
    assert chart.days[0].sent.height == chart.days[0].failed.height == 0


@pytest.mark.django_db
def test_the_chart_reads_earlier_days_from_the_cache_and_counts_today(settings) -> None:
    settings.TIME_ZONE = "UTC"
    settings.MAILOPS = {**settings.MAILOPS, "CHART_CACHE_SECONDS": 300}
    now = timezone.now()
    make_log(status=MailStatus.FAILED, created_at=now - timedelta(days=1))
    make_log(status=MailStatus.SENT, created_at=now)
    first = cached_daily_outcomes(MailLog.objects.all(), days=3)

    # A late row of yesterday waits for the cache to expire; today's shows at once.
    make_log(status=MailStatus.FAILED, created_at=now - timedelta(days=1))
    make_log(status=MailStatus.SENT, created_at=now)
    second = cached_daily_outcomes(MailLog.objects.all(), days=3)
    uncached = stats.daily_outcomes(MailLog.objects.all(), days=3)

    assert [(o.sent, o.failed) for o in first] == [(0, 0), (0, 1), (1, 0)]
    assert [(o.sent, o.failed) for o in second] == [(0, 0), (0, 1), (2, 0)]
    assert [(o.sent, o.failed) for o in uncached] == [(0, 0), (0, 2), (2, 0)]
    # Another list (another filter) has its own entry.
    failed = cached_daily_outcomes(MailLog.objects.failed(), days=3)
    assert [(o.sent, o.failed) for o in failed] == [(0, 0), (0, 2), (0, 0)]


@pytest.mark.django_db
def test_without_a_chart_cache_every_day_is_counted(settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "CHART_CACHE_SECONDS": 0}
    yesterday = timezone.now() - timedelta(days=1)
    make_log(status=MailStatus.FAILED, created_at=yesterday)
    cached_daily_outcomes(MailLog.objects.all(), days=2)
    make_log(status=MailStatus.FAILED, created_at=yesterday)

    outcomes = cached_daily_outcomes(MailLog.objects.all(), days=2)

    assert outcomes == stats.daily_outcomes(MailLog.objects.all(), days=2)
    assert outcomes[0].failed == 2


@pytest.mark.django_db
def test_a_long_list_can_take_its_time_span_from_another_list() -> None:
    # The admin gives a search past its count limit the whole log's span.
    early = datetime(2024, 3, 1, tzinfo=UTC)
    make_log(recipient="other@example.com", created_at=early)
    for day in (5, 6):
        make_log(recipient="bob@example.com", created_at=datetime(2025, 1, day, tzinfo=UTC))
    bob = MailLog.objects.filter(recipient="bob@example.com")

    own = stats.summarize(bob, limit=1, exact_span_below=1)
    wide = stats.summarize(bob, limit=1, exact_span_below=1, span_source=MailLog.objects.all())

    assert own.first == datetime(2025, 1, 5, tzinfo=UTC)
    assert (wide.first, wide.last) == (early, datetime(2025, 1, 6, tzinfo=UTC))


@pytest.mark.django_db
def test_a_list_not_counted_in_full_takes_its_span_from_the_time_index() -> None:
    # Not from the few rows counted (any of them): from the newest and oldest of all.
    times = [datetime(2025, 1, d, tzinfo=UTC) for d in (5, 2, 9, 7)]
    for when in times:
        make_log(created_at=when)

    summary = stats.summarize(MailLog.objects.all(), limit=2, exact_span_below=1000)

    assert (summary.more_than, summary.first, summary.last) == (2, min(times), max(times))


@pytest.mark.django_db
def test_a_list_that_matches_nothing_has_an_empty_chart(settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "CHART_CACHE_SECONDS": 300}
    make_log(status=MailStatus.FAILED)

    outcomes = cached_daily_outcomes(MailLog.objects.filter(pk__in=[]), days=2)

    assert [(o.sent, o.failed) for o in outcomes] == [(0, 0), (0, 0)]


@pytest.mark.django_db
def test_the_chart_counts_every_day_when_the_cache_is_down(settings, caplog) -> None:
    # A real Redis client against a port nobody listens on: every call fails.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    settings.MAILOPS = {**settings.MAILOPS, "CHART_CACHE_SECONDS": 300}
    make_log(status=MailStatus.FAILED, created_at=timezone.now() - timedelta(days=1))

    outcomes = cached_daily_outcomes(MailLog.objects.all(), days=2)

    assert outcomes == stats.daily_outcomes(MailLog.objects.all(), days=2)
    assert outcomes[0].failed == 1
    assert "chart's cache could not be read" in caplog.text
    assert "chart's cache could not be written" in caplog.text
