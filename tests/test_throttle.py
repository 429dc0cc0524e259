"""Per-mailer throttling: a rolling daily quota read from the log, and a rate limit."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending import throttle
from mailops.services import plan_delivery, send_test_mail
from mailops.tasks import deliver_batch_task

pytestmark = pytest.mark.django_db


def already_sent(count: int, *, hours_ago: float, mailer: str = "default") -> None:
    sent_at = timezone.now() - timedelta(hours=hours_ago)
    MailLog.objects.bulk_create(
        MailLog(
            mailer=mailer,
            recipient=f"old{i}@example.com",
            status=MailStatus.SENT,
            trigger=MailTrigger.API,
            sent_at=sent_at,
        )
        for i in range(count)
    )


def test_over_quota_rows_stay_queued_with_the_reason_and_resume(settings, worker_backend) -> None:
    settings.MAILOPS = {"THROTTLE": {"default": {"daily_quota": 3}}}
    already_sent(1, hours_ago=2)
    already_sent(5, hours_ago=25)  # outside the rolling window
    already_sent(5, hours_ago=1, mailer="outbox")  # another mailer's quota

    summary = send_test_mail(
        from_addresses([f"u{i}@example.com" for i in range(5)]), trigger=MailTrigger.API
    )

    assert (summary.sent, summary.queued, summary.failed) == (2, 3, 0)
    assert len(mail.outbox) == 2
    waiting = list(summary.logs().queued())
    frees_at = MailLog.objects.filter(recipient="old0@example.com", mailer="default").latest(
        "sent_at"
    ).sent_at + timedelta(hours=24)
    assert {row.next_attempt_at for row in waiting} == {frees_at}
    assert all("daily quota of 3 messages reached" in row.error for row in waiting)
    assert all("sending resumes from" in row.error for row in waiting)
    assert all(row.attempts == 0 for row in waiting), "waiting for a quota is not an attempt"
    assert summary.resumes_at == frees_at
    assert worker_backend.results[-1].task.run_after == frees_at

    # A day later the window has moved on: the follow-up task sends the rest.
    MailLog.objects.filter(sent_at__isnull=False).update(
        sent_at=timezone.now() - timedelta(hours=25)
    )
    summary.logs().queued().update(next_attempt_at=timezone.now())
    deliver_batch_task.call(str(summary.batch_id))
    assert summary.logs().sent().count() == 5
    assert set(summary.logs().values_list("error", flat=True)) == {""}


def test_plan_and_command_say_up_front_when_the_quota_holds_mail_back(settings) -> None:
    settings.MAILOPS = {"THROTTLE": {"default": {"daily_quota": 500}}}
    already_sent(499, hours_ago=3)

    notice = plan_delivery(3).notice()
    out = StringIO()
    call_command("sendtestmail", "a@example.com", "b@example.com", "c@example.com", stdout=out)

    expected = (
        "Mailer 'default' may send 1 more message today (daily quota 500, rolling 24 h): "
        "the other 2 stay queued"
    )
    assert expected in notice
    assert expected in out.getvalue()
    assert out.getvalue().index(expected) < out.getvalue().index("sent ")
    assert "1 sent, 0 failed, 0 rejected, 2 queued" in out.getvalue()


def test_no_quota_configured_costs_no_query(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        status = throttle.quota_status("default")
    assert (status.remaining, status.exhausted) == (None, False)


def test_rate_limiter_spaces_messages(monkeypatch: Any) -> None:
    clock = {"now": 100.0}
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(round(seconds, 6))
        clock["now"] += seconds

    monkeypatch.setattr(throttle.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(throttle.time, "sleep", sleep)
    limiter = throttle.RateLimiter(4)

    for _ in range(3):
        limiter.wait()
    clock["now"] += 1.0  # idle time is not saved up as a burst beyond one message
    limiter.wait()
    limiter.wait()

    assert sleeps == [0.25, 0.25, 0.25]


def test_rate_comes_from_settings(settings) -> None:
    settings.MAILOPS = {"THROTTLE": {"gmail": {"rate": 2, "daily_quota": 500}}}
    assert throttle.rate_for("gmail") == 2.0
    assert throttle.rate_for("default") is None


def test_async_flag_queues_and_says_so(settings, worker_backend) -> None:
    out = StringIO()
    call_command("sendtestmail", "a@example.com", "--async", stdout=out)

    assert "1 message will be queued and sent by the task worker" in out.getvalue()
    assert "0 sent, 0 failed, 0 rejected, 1 queued" in out.getvalue()
    assert "queued    a@example.com" not in out.getvalue()
    assert MailLog.objects.get().status == MailStatus.QUEUED
    assert len(worker_backend.results) == 1
