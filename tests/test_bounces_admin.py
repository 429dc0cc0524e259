"""Bounces in the admin and exports, and the one path webhooks and the mailbox share."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from mailops.admin.resources import EXPORT_COLUMNS, iter_csv
from mailops.models import MailEvent, MailLog, MailStatus, UnmatchedBounce
from mailops.tracking import MAILBOX_SOURCE, DeliveryEvent, delivery_event_recorded
from mailops.tracking import record_delivery_event as record
from tests.maillog_fixtures import make_log
from tests.test_tracking_webhooks import (  # noqa: F401 (fixtures)
    postmark_bounce,
    webhook,
    webhook_settings,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/mailops/maillog/"


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


@pytest.fixture
def recorded() -> Iterator[list[dict[str, Any]]]:
    """What ``delivery_event_recorded`` receivers are told."""
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append(kwargs)

    delivery_event_recorded.connect(receiver)
    yield calls
    delivery_event_recorded.disconnect(receiver)


def mailbox_bounce(log: MailLog, code: str = "5.1.1", **fields: Any) -> tuple[MailEvent, bool]:
    return record(
        log,
        DeliveryEvent(
            event_type=fields.pop("event_type", "bounced"),
            source=MAILBOX_SOURCE,
            fingerprint=fields.pop("fingerprint", "f1"),
            occurred_at=timezone.now(),
            mta_response=f"550 {code} <gone@example.net>: no such user",
            dsn_status=code,
            remote_mta="mx.example.net",
            matched_by="message_id",
        ),
    )


def test_the_entry_page_says_what_the_bounce_means(admin_client: Client) -> None:
    log = make_log(recipient="gone@example.net", status=MailStatus.SENT, sent_at=timezone.now())
    mailbox_bounce(log)

    page = admin_client.get(f"{CHANGELIST}{log.pk}/change/").content.decode()

    assert "the recipient&#x27;s server said the mailbox does not exist" in page
    assert "mx.example.net" in page
    assert "5.1.1" in page


def test_the_entry_page_of_a_row_without_a_bounce_has_no_bounce_section(
    admin_client: Client,
) -> None:
    log = make_log(recipient="fine@example.net", status=MailStatus.SENT)
    page = admin_client.get(f"{CHANGELIST}{log.pk}/change/").content.decode()
    assert "what happened" not in page


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("hard", {"hard@x.test"}), ("soft", {"soft@x.test"}), ("complaint", {"spam@x.test"})],
)
def test_the_bounce_filter(admin_client: Client, choice: str, expected: set[str]) -> None:
    make_log(recipient="hard@x.test", status=MailStatus.BOUNCED)
    make_log(recipient="soft@x.test", status=MailStatus.DEFERRED)
    make_log(recipient="spam@x.test", status=MailStatus.COMPLAINED)
    make_log(recipient="fine@x.test", status=MailStatus.SENT)

    response = admin_client.get(CHANGELIST, {"bounce": choice})

    shown = {log.recipient for log in response.context["cl"].result_list}
    assert shown == expected


def test_exports_carry_the_bounce_columns() -> None:
    log = make_log(recipient="gone@example.net", status=MailStatus.SENT, sent_at=timezone.now())
    mailbox_bounce(log)

    [row] = list(csv.DictReader(io.StringIO("".join(iter_csv(MailLog.objects.all())))))

    assert {"dsn_status", "remote_mta", "bounced_at", "bounce_match"} <= set(EXPORT_COLUMNS)
    assert (row["dsn_status"], row["remote_mta"], row["bounce_match"]) == (
        "5.1.1",
        "mx.example.net",
        "message_id",
    )
    assert row["bounced_at"]


def test_unmatched_reports_have_a_read_only_page(admin_client: Client) -> None:
    UnmatchedBounce.objects.create(
        mailer="default",
        mailbox="ops@example.com@imap.example.com:993",
        folder="INBOX",
        uid=7,
        kind="bounced",
        recipient="stranger@example.net",
        dsn_status="5.1.1",
        fingerprint="x" * 64,
    )
    page = admin_client.get("/admin/mailops/unmatchedbounce/").content.decode()
    assert "stranger@example.net" in page
    assert admin_client.get("/admin/mailops/unmatchedbounce/add/").status_code == 403


def test_a_mailbox_bounce_and_a_webhook_bounce_reach_the_same_receivers(
    recorded: list[dict[str, Any]],
    webhook: Any,  # noqa: F811
    webhook_settings: None,  # noqa: F811
) -> None:
    from_mailbox = make_log(recipient="a@example.net", status=MailStatus.SENT)
    from_provider = make_log(
        recipient="alice@example.com", status=MailStatus.SENT, esp_message_id="pm-1"
    )

    mailbox_bounce(from_mailbox)
    webhook("postmark", postmark_bounce("pm-1"))

    assert [(c["log"].pk, c["event"].event_type, c["moved"]) for c in recorded] == [
        (from_mailbox.pk, "bounced", True),
        (from_provider.pk, "bounced", True),
    ]
    assert recorded[0]["log"].status == MailStatus.BOUNCED
    assert recorded[0]["event"].esp == MAILBOX_SOURCE


def test_a_replayed_report_is_kept_once_and_tells_no_receiver_again(
    recorded: list[dict[str, Any]],
) -> None:
    log = make_log(recipient="a@example.net", status=MailStatus.SENT)
    first, created = mailbox_bounce(log)
    again, created_again = mailbox_bounce(log)
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert len(recorded) == 1


def test_a_late_deferral_is_recorded_but_never_moves_a_bounced_row_back(
    recorded: list[dict[str, Any]],
) -> None:
    log = make_log(recipient="a@example.net", status=MailStatus.SENT)
    mailbox_bounce(log)
    mailbox_bounce(log, "4.2.2", event_type="deferred", fingerprint="f2")
    log.refresh_from_db()
    assert (log.status, log.dsn_status) == (MailStatus.BOUNCED, "5.1.1")
    assert [c["moved"] for c in recorded] == [True, False]
    assert json.dumps([e.event_type for e in log.events.all()]) == '["bounced", "deferred"]'
