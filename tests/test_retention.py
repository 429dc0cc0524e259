"""Retention: the purge deletes what the policy no longer keeps, and the numbers survive it."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.utils import timezone

from mailops import stats
from mailops.arrival.health import recent_message_counts
from mailops.checks import check_mailops_settings
from mailops.models import (
    MailDailyCount,
    MailEvent,
    MailLog,
    MailStatus,
    MailTrigger,
    SendingProgress,
)
from mailops.retention.checks import check_retention
from mailops.retention.history import closed_days, closed_until
from mailops.retention.policy import purge_rules, retention_days
from mailops.retention.purge import Pace, purge_mail_log
from tests.maillog_fixtures import CHANGELIST, mailops, make_log, purge

# Far from UTC, with daylight saving time: a day boundary in the wrong zone shows.
ZONE = "America/Sao_Paulo"


def days_ago(days: int, hour: int = 12, minute: int = 0) -> datetime:
    day = timezone.localdate() - timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


# --- the policy -------------------------------------------------------------------


def test_the_most_specific_retention_entry_decides() -> None:
    retention = {
        "site": {"sent": 30, "*": 90},
        "*": {"failed": 365},
        "admin_action": {"*": 180},
    }
    assert retention_days(retention, "site", "sent") == 30
    assert retention_days(retention, "site", "failed") == 90
    assert retention_days(retention, "command", "failed") == 365
    assert retention_days(retention, "admin_action", "failed") == 180
    assert retention_days(retention, "command", "sent") is None
    # In flight: never, whatever "*" says.
    assert retention_days({"*": {"*": 1}}, "site", "queued") is None


def test_rules_group_pairs_by_days_and_narrow_to_the_asked_statuses() -> None:
    rules = purge_rules(retention={"*": {"*": 10}}, statuses=["sent"], triggers=["site"])
    assert [(rule.days, sorted(rule.pairs)) for rule in rules] == [(10, [("site", "sent")])]
    assert purge_rules(retention={}) == []


@pytest.mark.parametrize(
    "value",
    [
        {"site": {"queued": 3}},
        {"nonsense": {"sent": 3}},
        {"site": {"sent": -1}},
        {"site": {"sent": "30"}},
        {"site": 30},
        ["site"],
    ],
)
def test_a_bad_retention_is_e014_naming_the_key(value: Any) -> None:
    with override_settings(MAILOPS={"RETENTION": value}):
        messages = check_mailops_settings()
    assert [m.id for m in messages] == ["mailops.E014"]
    assert "RETENTION" in messages[0].msg


def test_bad_body_retention_and_purge_settings_are_e014() -> None:
    for name, value in (
        ("BODY_RETENTION", -3),
        ("PURGE_BATCH_SIZE", 0),
        ("PURGE_PAUSE", -1),
        # Far too long: a pause that would stop the purge for good, a cache
        # timeout a backend refuses.
        ("PURGE_PAUSE", 10**12),
        ("PURGE_PAUSE_RATIO", 1e12),
        ("CHART_CACHE_SECONDS", 10**12),
    ):
        with override_settings(MAILOPS={name: value}):
            assert [m.id for m in check_mailops_settings()] == ["mailops.E014"], name


def test_w042_when_every_message_is_logged_and_nothing_is_ever_deleted() -> None:
    with override_settings(MAILOPS={"AUDIT_ALL_MAIL": True}):
        assert [m.id for m in check_retention()] == ["mailops.W042"]
        out = StringIO()
        call_command("check", stdout=out, stderr=out)
        assert "mailops.W042" in out.getvalue()
    with override_settings(MAILOPS={"AUDIT_ALL_MAIL": True, "RETENTION": {"*": {"*": 365}}}):
        assert check_retention() == []
    with override_settings(MAILOPS={"AUDIT_ALL_MAIL": False}):
        assert check_retention() == []


# --- the purge ----------------------------------------------------------------------


@pytest.mark.django_db
def test_purge_follows_the_policy_and_never_touches_rows_in_flight() -> None:
    old_site_sent = make_log(
        trigger=MailTrigger.SITE, status=MailStatus.SENT, created_at=days_ago(40)
    )
    young_site_sent = make_log(
        trigger=MailTrigger.SITE, status=MailStatus.SENT, created_at=days_ago(10)
    )
    old_failed = make_log(status=MailStatus.FAILED, created_at=days_ago(40))
    ancient_failed = make_log(status=MailStatus.FAILED, created_at=days_ago(400))
    queued = make_log(status=MailStatus.QUEUED, created_at=days_ago(400))
    sending = make_log(status=MailStatus.SENDING, created_at=days_ago(400))
    in_doubt = make_log(status=MailStatus.FAILED, in_doubt=True, created_at=days_ago(400))
    command_sent = make_log(trigger=MailTrigger.COMMAND, created_at=days_ago(400))

    with mailops(RETENTION={"site": {"sent": 30}, "*": {"failed": 365}}):
        report = purge()

    assert report["deleted"] == {"failed": 1, "sent": 1}
    assert report["deleted_total"] == 2
    kept = set(MailLog.objects.values_list("pk", flat=True))
    assert kept == {
        young_site_sent.pk,
        old_failed.pk,
        queued.pk,
        sending.pk,
        in_doubt.pk,
        command_sent.pk,
    }
    assert old_site_sent.pk not in kept
    assert ancient_failed.pk not in kept


@pytest.mark.django_db
def test_dry_run_counts_per_status_and_deletes_nothing() -> None:
    for days in (5, 6, 7):
        make_log(status=MailStatus.SENT, created_at=days_ago(days))
    make_log(status=MailStatus.REJECTED, created_at=days_ago(9))
    make_log(status=MailStatus.SENT, created_at=days_ago(1))

    with mailops():
        report = purge("--dry-run", "--older-than", "3")

    assert report == {
        "dry_run": True,
        "deleted": {"rejected": 1, "sent": 3},
        "deleted_total": 4,
        "bodies_cleared": 0,
        "unmatched_bounces": {},
        "unmatched_bounces_total": 0,
        "days_closed": 0,
        "batches": 0,
    }
    assert MailLog.objects.count() == 5
    assert not MailDailyCount.objects.exists()


@pytest.mark.django_db
def test_status_and_trigger_options_narrow_the_purge() -> None:
    make_log(status=MailStatus.SENT, trigger=MailTrigger.SITE, created_at=days_ago(5))
    make_log(status=MailStatus.FAILED, trigger=MailTrigger.SITE, created_at=days_ago(5))
    make_log(status=MailStatus.SENT, trigger=MailTrigger.COMMAND, created_at=days_ago(5))

    with mailops():
        report = purge("--older-than", "1", "--status", "sent", "--trigger", "site")

    assert report["deleted"] == {"sent": 1}
    assert set(MailLog.objects.values_list("status", "trigger")) == {
        ("failed", "site"),
        ("sent", "command"),
    }


@pytest.mark.django_db
def test_events_and_leftover_progress_rows_go_with_their_rows() -> None:
    old = make_log(status=MailStatus.DELIVERED, claimed_by="t-old", created_at=days_ago(50))
    MailEvent.objects.create(log=old, event_type="delivered", esp="test", fingerprint="f1")
    live = make_log(status=MailStatus.SENDING, claimed_by="t-live", created_at=days_ago(50))
    done_same_chunk = make_log(status=MailStatus.SENT, claimed_by="t-live", created_at=days_ago(50))
    SendingProgress.objects.create(token="t-old", on_wire=old.pk)
    SendingProgress.objects.create(token="t-live", on_wire=live.pk)

    with mailops():
        report = purge("--older-than", "30")

    assert report["deleted"] == {"delivered": 1, "sent": 1}
    assert not MailEvent.objects.exists()
    # The chunk still has a row being sent: its progress row stays.
    assert list(SendingProgress.objects.values_list("token", flat=True)) == ["t-live"]
    assert set(MailLog.objects.values_list("pk", flat=True)) == {live.pk}
    assert not MailLog.objects.filter(pk=done_same_chunk.pk).exists()


@pytest.mark.django_db
def test_rows_go_in_bounded_primary_key_ranges_with_a_pause_after_each() -> None:
    logs = [make_log(created_at=days_ago(5, minute=n)) for n in range(10)]
    keep = make_log(status=MailStatus.QUEUED, created_at=days_ago(5, minute=30))
    pauses: list[float] = []
    progress: list[tuple[int, float]] = []

    report = purge_mail_log(
        rules=purge_rules(retention={}, older_than=1),
        batch_size=3,
        pace=Pace(pause=0.25, sleep=pauses.append),
        progress=lambda done, share: progress.append((done, share)),
    )

    assert report.total == 10
    # Eleven keys in ranges of three; the last range holds only the queued row.
    assert report.batches == 4
    assert pauses == [0.25] * 4
    assert [done for done, _ in progress] == [3, 6, 9, 10]
    assert progress[-1][1] == 1.0
    assert keep.pk == logs[-1].pk + 1
    assert list(MailLog.objects.values_list("pk", flat=True)) == [keep.pk]


@pytest.mark.django_db
def test_bodies_only_clears_old_bodies_and_keeps_the_rows() -> None:
    old = make_log(body="secret link", created_at=days_ago(20))
    young = make_log(body="recent", created_at=days_ago(2))
    queued = make_log(status=MailStatus.QUEUED, body="to send", created_at=days_ago(20))

    with mailops(BODY_RETENTION=7):
        report = purge("--bodies-only")

    assert report["bodies_cleared"] == 1
    assert report["deleted_total"] == 0
    bodies = dict(MailLog.objects.values_list("pk", "body"))
    assert bodies == {old.pk: "", young.pk: "recent", queued.pk: "to send"}


@pytest.mark.django_db
def test_without_retention_nothing_is_deleted_and_the_command_says_so() -> None:
    make_log(created_at=days_ago(4000))
    out = StringIO()
    with mailops():
        call_command("purgemaillog", stdout=out, stderr=StringIO())
    assert "nothing to purge" in out.getvalue()
    assert MailLog.objects.count() == 1


@pytest.mark.django_db
def test_the_text_report_names_each_status() -> None:
    make_log(status=MailStatus.SENT, created_at=days_ago(4))
    make_log(status=MailStatus.BOUNCED, created_at=days_ago(4))
    out = StringIO()
    with mailops():
        call_command("purgemaillog", "--older-than", "2", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Deleted 2 rows." in text
    assert "  bounced: 1" in text
    assert "  sent: 1" in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [("--older-than", "-1"), ("--bodies-only", "--status", "sent"), ("--status", "queued")],
)
def test_bad_options_are_usage_errors(args: tuple[str, ...]) -> None:
    with pytest.raises((CommandError, SystemExit)):
        call_command("purgemaillog", *args, stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_a_bad_setting_is_a_usage_error_naming_it() -> None:
    with (
        override_settings(MAILOPS={"RETENTION": {"site": {"sending": 3}}}),
        pytest.raises(CommandError, match="RETENTION") as error,
    ):
        call_command("purgemaillog", stdout=StringIO(), stderr=StringIO())
    assert error.value.returncode == 2


@pytest.mark.django_db
def test_the_task_purges_by_the_settings() -> None:
    from mailops.tasks import purge_mail_log_task

    make_log(created_at=days_ago(100))
    with mailops(RETENTION={"*": {"*": 30}}):
        result = purge_mail_log_task.call()
    assert result["deleted"] == {"sent": 1}
    assert not MailLog.objects.exists()


# --- the history survives -----------------------------------------------------------


def _spread_rows() -> None:
    """Rows over 60 days, around local midnight too, of several statuses, mailers, triggers."""
    statuses = [MailStatus.SENT, MailStatus.FAILED, MailStatus.DELIVERED, MailStatus.BOUNCED]
    mailers = ["default", "outbox"]
    triggers = [MailTrigger.SITE, MailTrigger.ADMIN_ACTION]
    n = 0
    for days in range(0, 60):
        for hour, minute in ((0, 0), (0, 30), (12, 0), (23, 59)):
            n += 1
            if days == 0 and hour == 23:
                continue  # not in the future
            make_log(
                status=statuses[n % 4],
                mailer=mailers[n % 2],
                trigger=triggers[n % 3 % 2],
                created_at=days_ago(days, hour, minute),
            )
    # Still in flight on an old day: kept, and counted the same.
    make_log(status=MailStatus.QUEUED, created_at=days_ago(30, 23, 59))


def _numbers(client: Client, query: str = "") -> dict[str, Any]:
    response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    summary = response.context["mailops_summary"]
    chart = response.context["mailops_chart"]
    return {
        "summary": summary.counts,
        "chart": [(d.day, d.sent.value, d.failed.value) for d in chart.days],
    }


@pytest.mark.django_db
@override_settings(TIME_ZONE=ZONE)
def test_chart_summary_and_metrics_are_the_same_after_purging_everything_before_today(
    auditor: Client,
) -> None:
    timezone.activate(ZONE)
    try:
        _spread_rows()
        queries = ["", "?status__exact=failed", "?mailer=outbox&trigger__exact=site"]
        before = {query: _numbers(auditor, query) for query in queries}
        by_day = stats.daily_outcomes(MailLog.objects.all(), days=60)
        with mailops(METRICS_WINDOW=86400 * 90):
            metrics_before = recent_message_counts()

        with mailops():
            report = purge("--older-than", "0")

        assert report["deleted_total"] > 200
        assert MailLog.objects.filter(created_at__lt=days_ago(0, 0, 0)).count() == 1
        assert closed_until() == timezone.localdate()
        after = {query: _numbers(auditor, query) for query in queries}
        assert after == before
        history = closed_days()
        assert stats.daily_outcomes(MailLog.objects.all(), days=60, history=history) == by_day
        with mailops(METRICS_WINDOW=86400 * 90):
            # The window starts at a midnight 90 days back: no partial day.
            assert recent_message_counts() == metrics_before
    finally:
        timezone.deactivate()


@pytest.mark.django_db
@override_settings(TIME_ZONE=ZONE)
def test_a_second_purge_adds_to_the_history_without_counting_a_day_twice() -> None:
    timezone.activate(ZONE)
    try:
        _spread_rows()
        before = stats.daily_outcomes(MailLog.objects.all(), days=60)
        with mailops(RETENTION={"*": {"sent": 40}}):
            purge()
        with mailops():
            purge("--older-than", "10")
            purge("--older-than", "10")
        assert stats.daily_outcomes(MailLog.objects.all(), days=60, history=closed_days()) == before
        markers = MailDailyCount.objects.filter(status="")
        assert markers.count() == markers.values("day").distinct().count()
    finally:
        timezone.deactivate()


# --- what points at purged rows --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_suppression_whose_source_row_and_event_are_purged_stays_unlinked() -> None:
    # transaction=True: the foreign keys are checked at each batch's commit,
    # as in production, not deferred to a test transaction that rolls back.
    from mailops.suppression.models import Suppression, SuppressionReason

    bounced = make_log(status=MailStatus.BOUNCED, created_at=days_ago(50))
    event = MailEvent.objects.create(
        log=bounced, event_type="bounced", esp="test", fingerprint="b1"
    )
    complained = make_log(status=MailStatus.COMPLAINED, created_at=days_ago(50))
    kept = make_log(status=MailStatus.COMPLAINED, created_at=days_ago(5))
    Suppression.objects.create(
        address="gone@example.net",
        reason=SuppressionReason.HARD_BOUNCE,
        detail="5.1.1 mailbox does not exist",
        source_log=bounced,
        source_event=event,
    )
    Suppression.objects.create(
        address="angry@example.net", reason=SuppressionReason.COMPLAINT, source_log=complained
    )
    Suppression.objects.create(
        address="recent@example.net", reason=SuppressionReason.COMPLAINT, source_log=kept
    )

    with mailops():
        report = purge("--older-than", "30")

    assert report["deleted"] == {"bounced": 1, "complained": 1}
    assert not MailEvent.objects.exists()
    entries = {
        s.address: (s.reason, s.detail, s.source_log_id, s.source_event_id)
        for s in Suppression.objects.all()
    }
    assert entries == {
        "gone@example.net": ("hard_bounce", "5.1.1 mailbox does not exist", None, None),
        "angry@example.net": ("complaint", "", None, None),
        "recent@example.net": ("complaint", "", kept.pk, None),
    }


@pytest.mark.django_db
def test_the_history_keeps_suppressed_bounced_and_complained_rows() -> None:
    counted = [
        MailStatus.SUPPRESSED,
        MailStatus.SUPPRESSED,
        MailStatus.BOUNCED,
        MailStatus.COMPLAINED,
        MailStatus.DELIVERED,
    ]
    for status in counted:
        make_log(status=status, trigger=MailTrigger.SITE, created_at=days_ago(40))

    with mailops():
        report = purge("--older-than", "30")

    assert report["deleted_total"] == 5
    history = closed_days()
    assert history is not None
    assert history.by_status() == {"suppressed": 2, "bounced": 1, "complained": 1, "delivered": 1}


@pytest.mark.django_db
def test_the_report_and_the_check_read_german() -> None:
    from django.utils import translation

    make_log(status=MailStatus.SENT, created_at=days_ago(4))
    make_log(status=MailStatus.SENT, created_at=days_ago(4))
    out = StringIO()
    with mailops(), translation.override("de"):
        call_command("purgemaillog", "--older-than", "2", stdout=out, stderr=StringIO())
        with override_settings(MAILOPS={"AUDIT_ALL_MAIL": True}):
            (warning,) = check_retention()
    assert "2 Einträge gelöscht." in out.getvalue()
    assert "0 Texte geleert." in out.getvalue()
    assert "das Mail-Protokoll wächst ohne Ende" in warning.msg
    assert "mailops.W042" in warning.hint
