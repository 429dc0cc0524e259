"""Retention beyond the log rows: unmatched bounce reports, progress rows, dependants, pacing."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models.signals import pre_delete
from django.utils import timezone

from mailops.checks import check_mailops_settings
from mailops.models import (
    MailEvent,
    MailLog,
    MailStatus,
    SendingProgress,
    Suppression,
    UnmatchedBounce,
)
from mailops.retention import purge as purge_module
from mailops.retention.batches import Pace, purge_transaction
from mailops.retention.dependants import deletes_in_sql
from mailops.retention.policy import purge_rules
from mailops.retention.purge import purge_mail_log
from tests.maillog_fixtures import mailops, make_log, make_logs, purge


def days_ago(days: int, hour: int = 12) -> datetime:
    day = timezone.localdate() - timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(hour)))


def make_report(kind: str, *, recorded: datetime, uid: int) -> UnmatchedBounce:
    report = UnmatchedBounce.objects.create(
        mailer="default",
        mailbox="ops@example.com@imap.example.com:993",
        folder="INBOX",
        uid=uid,
        kind=kind,
        recipient=f"stranger{uid}@example.net",
        fingerprint=f"{uid:064d}",
    )
    UnmatchedBounce.objects.filter(pk=report.pk).update(created_at=recorded)
    return report


@pytest.fixture
def reports(db: None) -> dict[str, UnmatchedBounce]:
    return {
        "old bounce": make_report("bounced", recorded=days_ago(40), uid=1),
        "old unreadable": make_report("unreadable", recorded=days_ago(31), uid=2),
        "old complaint": make_report("complained", recorded=days_ago(90), uid=3),
        "young bounce": make_report("bounced", recorded=days_ago(29), uid=4),
    }


# --- unmatched bounce reports -------------------------------------------------------


@pytest.mark.django_db
def test_unmatched_reports_older_than_their_retention_go_counted_by_kind(
    reports: dict[str, UnmatchedBounce],
) -> None:
    kept_row = make_log(created_at=days_ago(40))

    with mailops(UNMATCHED_BOUNCE_RETENTION=30, PURGE_BATCH_SIZE=2):
        report = purge()

    assert report["unmatched_bounces"] == {"bounced": 1, "complained": 1, "unreadable": 1}
    assert report["unmatched_bounces_total"] == 3
    assert list(UnmatchedBounce.objects.values_list("pk", flat=True)) == [
        reports["young bounce"].pk
    ]
    # RETENTION is empty: the log keeps every row.
    assert report["deleted_total"] == 0
    assert MailLog.objects.filter(pk=kept_row.pk).exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("reports")
def test_a_dry_run_counts_unmatched_reports_and_the_text_report_lists_each_kind() -> None:
    out = StringIO()
    with mailops(UNMATCHED_BOUNCE_RETENTION=30):
        call_command("purgemaillog", "--dry-run", stdout=out, stderr=StringIO())
        call_command("purgemaillog", stdout=out, stderr=StringIO())

    text = out.getvalue()
    assert "Would delete 3 unmatched bounce reports." in text
    assert "Deleted 3 unmatched bounce reports." in text
    assert "  unreadable: 1" in text
    assert "nothing to purge" not in text
    assert UnmatchedBounce.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("reports")
def test_unmatched_reports_stay_by_default_and_with_bodies_only() -> None:
    with mailops(BODY_RETENTION=7, RETENTION={"*": {"*": 1}}):
        assert purge()["unmatched_bounces"] == {}
    with mailops(UNMATCHED_BOUNCE_RETENTION=7):
        assert purge("--bodies-only")["unmatched_bounces_total"] == 0
    assert UnmatchedBounce.objects.count() == 4


@pytest.mark.django_db
@pytest.mark.usefixtures("reports")
def test_the_task_purges_unmatched_reports_too() -> None:
    from mailops.tasks import purge_mail_log_task

    with mailops(UNMATCHED_BOUNCE_RETENTION=7):
        result = purge_mail_log_task.call()
    assert result["unmatched_bounces_total"] == 4
    assert not UnmatchedBounce.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", [-1, 0, 6, 2.5, "30", True])
def test_a_bad_unmatched_retention_is_e014_and_a_usage_error(value: Any) -> None:
    with mailops(UNMATCHED_BOUNCE_RETENTION=value):
        errors = check_mailops_settings(None)
        with pytest.raises(CommandError, match="UNMATCHED_BOUNCE_RETENTION") as error:
            call_command("purgemaillog", stdout=StringIO(), stderr=StringIO())
    assert [e.id for e in errors if "UNMATCHED_BOUNCE_RETENTION" in e.msg] == ["mailops.E014"]
    assert error.value.returncode == 2


# --- what else grows: progress rows, events -----------------------------------------


@pytest.mark.django_db
def test_progress_rows_no_claim_in_flight_needs_go_even_when_no_row_does() -> None:
    make_log(status=MailStatus.SENT, claimed_by="t-done", created_at=days_ago(2))
    make_log(status=MailStatus.SENDING, claimed_by="t-live", created_at=days_ago(2))
    for token in ("t-done", "t-live", "t-gone"):
        SendingProgress.objects.create(token=token, on_wire=None)

    with mailops(RETENTION={"*": {"*": 30}}):
        assert purge()["deleted_total"] == 0

    assert list(SendingProgress.objects.values_list("token", flat=True)) == ["t-live"]


@pytest.fixture(params=["delete returning", "lock then delete"])
def deletion(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a batch goes in SQL: one DELETE ... RETURNING, or (other databases) lock first."""
    if request.param == "lock then delete":
        monkeypatch.setattr(purge_module, "RETURNING_VENDORS", frozenset())
    return str(request.param)


@pytest.mark.django_db
@pytest.mark.usefixtures("deletion")
def test_events_go_in_sql_and_what_points_at_them_is_unlinked() -> None:
    assert deletes_in_sql(MailLog)
    old = make_log(status=MailStatus.BOUNCED, created_at=days_ago(40))
    kept = make_log(status=MailStatus.BOUNCED, created_at=days_ago(2))
    gone_event = MailEvent.objects.create(log=old, event_type="bounced", esp="t", fingerprint="a")
    kept_event = MailEvent.objects.create(log=kept, event_type="bounced", esp="t", fingerprint="b")
    entry = Suppression.objects.create(
        address="old@example.com", reason="hard_bounce", source_log=old, source_event=gone_event
    )

    queued = make_log(status=MailStatus.QUEUED, created_at=days_ago(40))
    queued_event = MailEvent.objects.create(
        log=queued, event_type="deferred", esp="t", fingerprint="c"
    )

    with mailops(RETENTION={"*": {"*": 30}}):
        assert purge()["deleted"] == {"bounced": 1}

    assert set(MailEvent.objects.values_list("pk", flat=True)) == {kept_event.pk, queued_event.pk}
    entry.refresh_from_db()
    assert (entry.source_log_id, entry.source_event_id) == (None, None)


@pytest.mark.django_db
def test_a_receiver_on_events_gets_each_deleted_event_through_django() -> None:
    old = make_log(status=MailStatus.DELIVERED, created_at=days_ago(40))
    event = MailEvent.objects.create(log=old, event_type="delivered", esp="t", fingerprint="a")
    seen: list[int] = []

    def receiver(sender: Any, instance: MailEvent, **kwargs: Any) -> None:
        seen.append(instance.pk)

    pre_delete.connect(receiver, sender=MailEvent)
    try:
        with mailops(RETENTION={"*": {"*": 30}}):
            assert purge()["deleted"] == {"delivered": 1}
    finally:
        pre_delete.disconnect(receiver, sender=MailEvent)
    assert seen == [event.pk]
    assert not MailEvent.objects.exists()


@pytest.mark.django_db
def test_a_receiver_on_log_rows_gets_each_purged_row_with_its_events_gone() -> None:
    rows = [make_log(status=MailStatus.SENT, created_at=days_ago(40)) for _ in range(3)]
    MailEvent.objects.create(log=rows[0], event_type="delivered", esp="t", fingerprint="a")
    kept = make_log(status=MailStatus.SENT, created_at=days_ago(2))
    seen: list[int] = []

    def receiver(sender: Any, instance: MailLog, **kwargs: Any) -> None:
        seen.append(instance.pk)

    pre_delete.connect(receiver, sender=MailLog)
    try:
        assert not deletes_in_sql(MailLog)
        with mailops(RETENTION={"*": {"*": 30}}):
            assert purge()["deleted"] == {"sent": 3}
    finally:
        pre_delete.disconnect(receiver, sender=MailLog)
    assert sorted(seen) == [row.pk for row in rows]
    assert list(MailLog.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not MailEvent.objects.exists()


# --- pacing ---------------------------------------------------------------------------


class FakeClock:
    """Each reading is ``step`` seconds after the previous one."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.django_db
def test_the_purge_rests_in_proportion_to_each_batch_and_at_least_the_pause() -> None:
    for minute in range(4):
        make_log(created_at=days_ago(5) + timedelta(minutes=minute))
    rests: list[float] = []

    # Each batch "takes" 0.5 s (one clock step from its start to its end).
    slow = Pace(pause=0.1, ratio=2.0, sleep=rests.append, clock=FakeClock(0.5))
    purge_mail_log(rules=purge_rules(retention={}, older_than=1), batch_size=2, pace=slow)
    assert rests == [1.0, 1.0]

    rests.clear()
    make_log(created_at=days_ago(5))
    fast = Pace(pause=0.1, ratio=2.0, sleep=rests.append, clock=FakeClock(0.01))
    purge_mail_log(rules=purge_rules(retention={}, older_than=1), batch_size=2, pace=fast)
    assert rests == [0.1]


# --- the purge's transactions ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_purge_commits_lazily_only_in_a_transaction_of_its_own() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return str(cursor.fetchone()[0])

    with purge_transaction("default"):
        assert synchronous_commit() == "off"
    # Inside a caller's transaction, SET LOCAL would reach the caller's writes.
    with transaction.atomic(), purge_transaction("default"):
        assert synchronous_commit() == "on"
    assert synchronous_commit() == "on"


@pytest.mark.django_db
def test_the_lock_and_delete_path_deletes_every_row_it_locked_and_counted() -> None:
    # A delete receiver sends the purge through Django's deletion; more rows
    # than one DELETE takes keys for.
    old = [make_log(created_at=days_ago(40)) for _ in range(3)]
    in_flight = make_log(created_at=days_ago(40), status=MailStatus.SENDING)
    make_logs(950)
    MailLog.objects.filter(created_at__gte=days_ago(1)).update(created_at=days_ago(40))
    seen: list[int] = []

    def receiver(sender: Any, instance: MailLog, **kwargs: Any) -> None:
        seen.append(instance.pk)

    pre_delete.connect(receiver, sender=MailLog)
    try:
        with mailops(RETENTION={"*": {"*": 30}}, PURGE_BATCH_SIZE=5000):
            report = purge()
    finally:
        pre_delete.disconnect(receiver, sender=MailLog)

    assert report["deleted_total"] == len(seen) == 953
    assert {row.pk for row in old} <= set(seen)
    assert list(MailLog.objects.values_list("pk", flat=True)) == [in_flight.pk]
