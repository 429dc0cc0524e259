"""How addresses get on the suppression list: delivery events, through the one seam."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from anymail.signals import AnymailTrackingEvent
from django.utils import timezone

from mailops.models import MailEvent, MailLog, MailStatus, MailTrigger, Suppression
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from mailops.suppression.models import SuppressionReason
from mailops.tracking.events import record_tracking_event
from tests.test_tracking_webhooks import (  # noqa: F401 - the webhook fixture
    postmark_bounce,
    postmark_spam_complaint,
    sent_row,
    webhook,
    webhook_settings,
)

pytestmark = pytest.mark.django_db


def event(log: MailLog, kind: str, **fields: Any) -> MailEvent | None:
    """Apply one provider event to ``log`` the way every webhook does."""
    tracking = AnymailTrackingEvent(
        event_type=kind,
        message_id=log.esp_message_id,
        recipient=log.recipient,
        event_id=fields.pop("event_id", uuid.uuid4().hex),
        timestamp=fields.pop("timestamp", timezone.now()),
        **fields,
    )
    return record_tracking_event(tracking, esp_name="Postmark")


def row(recipient: str = "dead@example.com") -> MailLog:
    return sent_row(uuid.uuid4().hex, recipient=recipient)


def test_a_hard_bounce_webhook_suppresses_and_the_next_test_mail_is_rejected(
    webhook: Callable[..., Any],  # noqa: F811
) -> None:
    log = sent_row("2706ee8a-737c-4285-b032-ccd317af53ed", recipient="Alice@Example.com")

    assert webhook("postmark", postmark_bounce(log.esp_message_id)).status_code == 200

    entry = Suppression.objects.get()
    assert entry.address == "alice@example.com"
    assert entry.reason == SuppressionReason.HARD_BOUNCE
    assert "550 5.1.1 The email account that you tried to reach does not exist." in entry.detail
    assert (entry.source_log_id, entry.source_event) == (log.pk, log.events.get())
    summary = send_test_mail(from_addresses(["alice@example.com"]), trigger=MailTrigger.API)
    rejected = summary.logs().get()
    assert rejected.status == MailStatus.REJECTED
    since = timezone.localdate().isoformat()
    assert rejected.error.startswith(f"suppressed since {since}: smtp;550 5.1.1 The email")


def test_a_complaint_suppresses(webhook: Callable[..., Any]) -> None:  # noqa: F811
    log = sent_row("2706ee8a-0000-4285-b032-ccd317af53ed", status=MailStatus.DELIVERED)
    webhook("postmark", postmark_spam_complaint(log.esp_message_id))
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINT


def test_an_unsubscribe_suppresses_without_changing_the_status() -> None:
    log = row()
    event(log, "unsubscribed")
    log.refresh_from_db()
    assert log.status == MailStatus.SENT
    assert Suppression.objects.get().reason == SuppressionReason.UNSUBSCRIBE


def test_a_provider_rejection_for_a_bounced_address_is_a_hard_bounce() -> None:
    event(row(), "rejected", reject_reason="bounced", description="Recipient is suppressed")
    assert Suppression.objects.get().reason == SuppressionReason.HARD_BOUNCE


@pytest.mark.parametrize("kind", ["delivered", "opened", "clicked", "deferred", "failed"])
def test_other_events_suppress_nothing(kind: str) -> None:
    event(row(), kind, mta_response="451 4.7.1 greylisted, try again later")
    assert not Suppression.objects.exists()


def test_soft_bounces_suppress_after_the_limit_of_different_messages(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SOFT_BOUNCE_LIMIT": 3}
    soft = {"mta_response": "452 4.2.2 mailbox full"}
    first = row("full@example.com")
    event(first, "bounced", **soft)
    # The same message reported twice counts once.
    event(first, "bounced", **soft)
    event(row("Full@example.com"), "bounced", **soft)
    assert not Suppression.objects.exists()

    event(row("full@example.com"), "bounced", **soft)

    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == ("full@example.com", SuppressionReason.SOFT_BOUNCES)
    assert entry.detail.startswith("452 4.2.2 mailbox full")


def test_a_second_bounce_of_the_same_message_is_judged_by_its_own_code(settings: Any) -> None:
    # The row keeps the first bounce's 4.2.2 (bounced to bounced is no move):
    # the hard 5.1.1 that follows must not be read as soft through it.
    settings.MAILOPS = {**settings.MAILOPS, "SOFT_BOUNCE_LIMIT": 3}
    log = row("full@example.com")
    event(log, "bounced", mta_response="452 4.2.2 mailbox full")
    assert not Suppression.objects.exists()

    event(log, "bounced", mta_response="550 5.1.1 no such user")

    entry = Suppression.objects.get()
    assert (entry.reason, entry.detail) == (SuppressionReason.HARD_BOUNCE, "550 5.1.1 no such user")
    log.refresh_from_db()
    assert log.dsn_status == "4.2.2"


def test_soft_bounces_older_than_the_window_do_not_count(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SOFT_BOUNCE_LIMIT": 2, "SOFT_BOUNCE_WINDOW": 3600}
    soft = {"mta_response": "452 4.2.2 mailbox full"}
    event(row("full@example.com"), "bounced", **soft)
    two_hours_ago = timezone.now() - timedelta(hours=2)
    MailEvent.objects.update(occurred_at=two_hours_ago, received_at=two_hours_ago)
    event(row("full@example.com"), "bounced", **soft)
    assert not Suppression.objects.exists()


def test_old_soft_bounces_recorded_today_do_not_count_as_recent(settings: Any) -> None:
    # mailbounces --since (or a reader that was down) records months-old reports
    # now: the window is judged by when each bounce happened.
    settings.MAILOPS = {**settings.MAILOPS, "SOFT_BOUNCE_LIMIT": 2, "SOFT_BOUNCE_WINDOW": 86400}
    soft = {"mta_response": "452 4.2.2 mailbox full"}
    for months_ago in (3, 2, 1):
        happened = timezone.now() - timedelta(days=30 * months_ago)
        event(row("full@example.com"), "bounced", timestamp=happened, **soft)
    assert not Suppression.objects.exists()

    event(row("full@example.com"), "bounced", **soft)
    event(row("full@example.com"), "bounced", **soft)
    assert Suppression.objects.get().reason == SuppressionReason.SOFT_BOUNCES


def test_a_replayed_event_and_a_second_bounce_keep_the_first_entry() -> None:
    log = row()
    event(log, "bounced", event_id="one", mta_response="550 5.1.1 unknown user")
    first = Suppression.objects.get()
    event(log, "bounced", event_id="one", mta_response="550 5.1.1 unknown user")
    event(row(), "complained", event_id="two")
    assert list(Suppression.objects.values_list("pk", "reason")) == [
        (first.pk, SuppressionReason.HARD_BOUNCE)
    ]


def test_an_expired_entry_is_renewed_by_a_new_bounce() -> None:
    log = row()
    event(log, "bounced", mta_response="550 5.1.1 unknown user")
    Suppression.objects.update(expires_at=timezone.now() - timedelta(days=1))
    event(row(), "complained")
    entry = Suppression.objects.get()
    assert (entry.reason, entry.expires_at) == (SuppressionReason.COMPLAINT, None)


def test_purging_old_log_rows_keeps_the_entry_without_dangling_references() -> None:
    log = row()
    event(log, "bounced", mta_response="550 5.1.1 unknown user")

    MailLog.objects.all().delete()  # events go with their rows (CASCADE)

    entry = Suppression.objects.get()
    assert (entry.source_log_id, entry.source_event_id) == (None, None)
    assert entry.reason == SuppressionReason.HARD_BOUNCE
