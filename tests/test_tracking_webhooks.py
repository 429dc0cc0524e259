"""Provider webhooks update the audit trail: status moves and a timeline of events.

Payloads are shaped like the providers' real ones (as in anymail's own
webhook tests) and posted with the Django test client, CSRF checks on, to
the URLs the site serves: ``/anymail/<esp>/tracking/`` with basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client, RequestFactory

from mailops.admin.events import MailEventInline
from mailops.models import (
    ALLOWED_TRANSITIONS,
    MailEvent,
    MailLog,
    MailStatus,
    MailTrigger,
    can_transition,
)
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.provider_api import ProviderAPI

pytestmark = pytest.mark.django_db

WEBHOOK_USER, WEBHOOK_PASSWORD = "anymail", "hook-pass-9c1e7a"
MAILGUN_SIGNING_KEY = "mailgun-signing-key-3f9a"


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}",
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
    }


def basic_auth(user: str = WEBHOOK_USER, password: str = WEBHOOK_PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def webhook() -> Callable[..., Any]:
    """POST a JSON payload to ``/anymail/<esp>/tracking/`` the way the provider does."""
    # The provider is no browser: CSRF checks on prove the webhook is exempt.
    client = Client(enforce_csrf_checks=True)

    def post(esp: str, payload: Any, *, auth: str | None = None) -> Any:
        headers = {"HTTP_AUTHORIZATION": basic_auth() if auth is None else auth}
        if auth == "":
            headers = {}
        return client.post(
            f"/anymail/{esp}/tracking/",
            data=json.dumps(payload),
            content_type="application/json",
            **headers,
        )

    return post


def sent_row(esp_message_id: str, recipient: str = "alice@example.com", **fields: Any) -> MailLog:
    return MailLog.objects.create(
        status=fields.pop("status", MailStatus.SENT),
        recipient=recipient,
        mailer="provider",
        trigger=MailTrigger.API,
        esp_message_id=esp_message_id,
        **fields,
    )


# --- provider payloads -------------------------------------------------------


def postmark_delivery(message_id: str, at: str = "2026-01-15T10:00:05.1234567-05:00") -> dict:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": "alice@example.com",
        "Tag": "",
        "DeliveredAt": at,
        "Details": "smtp;250 2.0.0 OK 1736953205 ok",
        "Metadata": {},
    }


def postmark_bounce(
    message_id: str,
    *,
    bounce_id: int = 901542550,
    kind: str = "HardBounce",
    at: str = "2026-01-15T10:00:09.3963933-05:00",
) -> dict:
    return {
        "RecordType": "Bounce",
        "ID": bounce_id,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 2,
        "Name": "Hard bounce" if kind == "HardBounce" else "Message delayed",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message "
        "(ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": "alice@example.com",
        "From": "mailops-tests@example.com",
        "BouncedAt": at,
        "DumpAvailable": True,
        "Inactive": kind == "HardBounce",
        "CanActivate": True,
        "Subject": "Test mail",
        "Content": "Return-Path: <>...",
    }


def postmark_spam_complaint(message_id: str) -> dict:
    payload = postmark_bounce(message_id, bounce_id=901542551, at="2026-01-15T11:00:00Z")
    payload.update(
        RecordType="SpamComplaint",
        Type="SpamComplaint",
        TypeCode=512,
        Name="Spam complaint",
        Description="The subscriber explicitly marked this message as spam.",
        Details="Test spam complaint details",
    )
    return payload


def postmark_open(message_id: str, at: str = "2026-01-15T10:05:00.2493688-05:00") -> dict:
    return {
        "RecordType": "Open",
        "MessageStream": "outbound",
        "FirstOpen": True,
        "Client": {"Name": "Gmail", "Company": "Google", "Family": "Gmail"},
        "OS": {"Name": "unknown", "Company": "unknown", "Family": "unknown"},
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0",
        "ReadSeconds": 5,
        "Geo": {"CountryISOCode": "RS", "City": "Novi Sad", "IP": "192.0.2.10"},
        "MessageID": message_id,
        "ReceivedAt": at,
        "Recipient": "alice@example.com",
        "Tag": "",
        "Metadata": {},
    }


def postmark_click(message_id: str) -> dict:
    payload = postmark_open(message_id, at="2026-01-15T15:06:00Z")
    del payload["FirstOpen"], payload["ReadSeconds"]
    payload.update(
        RecordType="Click",
        ClickLocation="HTML",
        OriginalLink="https://example.com/welcome?token=personal-abc123#top",
    )
    return payload


def mailgun_event(
    event: str,
    message_id: str,
    *,
    timestamp: float,
    severity: str | None = None,
    code: int = 250,
    message: str = "OK",
    signing_key: str = MAILGUN_SIGNING_KEY,
) -> dict:
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signed_at = str(int(timestamp))
    event_data: dict[str, Any] = {
        "id": "hTWCTD81RtiDN-" + uuid.uuid4().hex[:8],
        "timestamp": timestamp,
        "log-level": "info" if event == "delivered" else "warn",
        "event": event,
        "recipient": "alice@example.com",
        "recipient-domain": "example.com",
        "tags": [],
        "user-variables": {},
        "envelope": {"transport": "smtp", "sender": "mailops-tests@example.com"},
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "message": {
            "headers": {
                "to": "alice@example.com",
                "message-id": message_id.strip("<>"),
                "from": "mailops-tests@example.com",
                "subject": "Test mail",
            },
            "attachments": [],
            "size": 809,
        },
        "delivery-status": {
            "tls": True,
            "mx-host": "mx.example.com",
            "attempt-no": 1,
            "description": "" if code < 400 else message,
            "code": code,
            "message": message,
        },
    }
    if severity:
        event_data["severity"] = severity
        event_data["reason"] = "generic"
    signature = hmac.new(
        signing_key.encode(), f"{signed_at}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": signed_at, "token": token, "signature": signature},
        "event-data": event_data,
    }


def brevo_event(event: str, message_id: str, *, ts_epoch: int, reason: str = "") -> dict:
    payload: dict[str, Any] = {
        "event": event,
        "email": "alice@example.com",
        "id": 9999999,
        "date": "2026-01-15 16:00:05",
        "message-id": message_id,
        "ts": ts_epoch // 1000,
        "ts_event": ts_epoch // 1000,
        "ts_epoch": ts_epoch,
        "subject": "Test mail",
        "sending_ip": "198.51.100.7",
    }
    if reason:
        payload["reason"] = reason
    return payload


# --- delivery status ---------------------------------------------------------


def test_postmark_delivery_marks_the_sent_row_delivered(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any, webhook: Callable[..., Any]
) -> None:
    api = provider_api_factory("postmark")
    settings.MAILERS = {"postmark": api.mailer()}
    summary = send_test_mail(
        from_addresses(["alice@example.com"]), using="postmark", trigger=MailTrigger.API
    )
    log = summary.logs().get()
    assert log.status == MailStatus.SENT

    response = webhook("postmark", postmark_delivery(log.esp_message_id))

    assert response.status_code == 200
    log.refresh_from_db()
    assert (log.status, log.error) == (MailStatus.DELIVERED, "")
    (event,) = log.events.all()
    assert (event.event_type, event.esp, event.esp_event_id) == ("delivered", "Postmark", "")
    assert event.occurred_at == datetime(2026, 1, 15, 15, 0, 5, 123456, tzinfo=UTC)
    assert event.mta_response == "smtp;250 2.0.0 OK 1736953205 ok"


def test_hard_bounce_marks_bounced_with_the_servers_reply(webhook: Callable[..., Any]) -> None:
    log = sent_row("2706ee8a-737c-4285-b032-ccd317af53ed")

    response = webhook("postmark", postmark_bounce(log.esp_message_id))

    assert response.status_code == 200
    log.refresh_from_db()
    assert log.status == MailStatus.BOUNCED
    assert log.smtp_code == 550
    assert log.error.startswith("Postmark reported bounced (bounced): The server was unable")
    assert "550 5.1.1 The email account that you tried to reach does not exist." in log.error
    (event,) = log.events.all()
    assert (event.esp_event_id, event.reject_reason) == ("901542550", "bounced")


def test_spam_complaint_marks_complained(webhook: Callable[..., Any]) -> None:
    log = sent_row("2706ee8a-0000-4285-b032-ccd317af53ed", status=MailStatus.DELIVERED)

    assert webhook("postmark", postmark_spam_complaint(log.esp_message_id)).status_code == 200

    log.refresh_from_db()
    assert log.status == MailStatus.COMPLAINED
    assert log.events.get().event_type == "complained"


def test_opens_and_clicks_are_kept_without_losing_delivered(webhook: Callable[..., Any]) -> None:
    log = sent_row("f4830d10-9c35-4f0c-bca3-3d9b459821f8")

    for payload in (
        postmark_delivery(log.esp_message_id),
        postmark_open(log.esp_message_id),
        postmark_click(log.esp_message_id),
    ):
        assert webhook("postmark", payload).status_code == 200

    log.refresh_from_db()
    assert log.status == MailStatus.DELIVERED
    events = list(log.events.all())
    assert [e.event_type for e in events] == ["delivered", "opened", "clicked"]
    # Query strings (personal tokens) are not kept.
    assert events[2].click_url == "https://example.com/welcome"


def test_brevo_deferral_then_delivery_clears_the_deferral_note(
    webhook: Callable[..., Any],
) -> None:
    log = sent_row("<202601151000.12345678901@smtp-relay.mailin.fr>")

    deferred = brevo_event(
        "deferred",
        log.esp_message_id,
        ts_epoch=1768492805000,
        reason="421 4.7.0 Try again later, closing connection.",
    )
    assert webhook("brevo", deferred).status_code == 200
    log.refresh_from_db()
    assert (log.status, log.smtp_code) == (MailStatus.DEFERRED, 421)
    assert "Brevo reported deferred: 421 4.7.0 Try again later" in log.error

    delivered = brevo_event("delivered", log.esp_message_id, ts_epoch=1768493405000)
    assert webhook("brevo", delivered).status_code == 200
    log.refresh_from_db()
    assert (log.status, log.error, log.smtp_code) == (MailStatus.DELIVERED, "", None)
    assert [e.event_type for e in log.events.all()] == ["deferred", "delivered"]


def test_brevo_blocked_recipient_counts_as_bounced(webhook: Callable[..., Any]) -> None:
    log = sent_row("<202601151000.22222222222@smtp-relay.mailin.fr>")

    payload = brevo_event(
        "blocked",
        log.esp_message_id,
        ts_epoch=1768492805000,
        reason="blocked : due to blacklist user",
    )
    assert webhook("brevo", payload).status_code == 200

    log.refresh_from_db()
    assert log.status == MailStatus.BOUNCED
    assert log.error == "Brevo reported rejected (blocked): blocked : due to blacklist user"


# --- ordering ------------------------------------------------------------------


def test_late_deferral_after_a_bounce_does_not_downgrade(webhook: Callable[..., Any]) -> None:
    log = sent_row("2706ee8a-1111-4285-b032-ccd317af53ed")

    webhook("postmark", postmark_bounce(log.esp_message_id, at="2026-01-15T10:10:00Z"))
    late = postmark_bounce(
        log.esp_message_id, bounce_id=901542999, kind="Transient", at="2026-01-15T10:01:00Z"
    )
    response = webhook("postmark", late)

    assert response.status_code == 200
    log.refresh_from_db()
    assert log.status == MailStatus.BOUNCED
    assert log.smtp_code == 550
    # Both are on the timeline, in the order they happened.
    assert [e.event_type for e in log.events.all()] == ["deferred", "bounced"]


def test_mailgun_temporary_failure_after_delivery_does_not_downgrade(
    webhook: Callable[..., Any],
) -> None:
    log = sent_row("<20260115100000.1.DF5966851B4BAA99@example.com>")

    delivered = mailgun_event("delivered", log.esp_message_id, timestamp=1768492900.15)
    deferred = mailgun_event(
        "failed",
        log.esp_message_id,
        timestamp=1768492805.66,
        severity="temporary",
        code=451,
        message="4.7.1 Greylisted, try again later",
    )
    assert webhook("mailgun", delivered).status_code == 200
    assert webhook("mailgun", deferred).status_code == 200

    log.refresh_from_db()
    assert (log.status, log.error) == (MailStatus.DELIVERED, "")
    assert [e.event_type for e in log.events.all()] == ["deferred", "delivered"]


def test_the_lifecycle_never_downgrades_a_tracking_state() -> None:
    assert not can_transition(MailStatus.DELIVERED, MailStatus.DEFERRED)
    assert not can_transition(MailStatus.BOUNCED, MailStatus.DEFERRED)
    assert not can_transition(MailStatus.BOUNCED, MailStatus.DELIVERED)
    assert can_transition(MailStatus.DEFERRED, MailStatus.DELIVERED)
    assert can_transition(MailStatus.DELIVERED, MailStatus.BOUNCED)
    assert ALLOWED_TRANSITIONS[MailStatus.COMPLAINED] == frozenset()


# --- idempotence and unknown messages ----------------------------------------


@pytest.mark.parametrize("builder", [postmark_delivery, postmark_bounce, postmark_open])
def test_a_replayed_event_is_kept_once(
    webhook: Callable[..., Any], builder: Callable[[str], dict]
) -> None:
    log = sent_row("883953f4-6105-42a2-a16a-77a8eac79483")
    payload = builder(log.esp_message_id)

    first = webhook("postmark", payload)
    status_after_first = MailLog.objects.get().status
    replay = webhook("postmark", payload)

    assert (first.status_code, replay.status_code) == (200, 200)
    assert MailEvent.objects.count() == 1
    assert MailLog.objects.get().status == status_after_first


def test_a_replayed_mailgun_event_is_kept_once(webhook: Callable[..., Any]) -> None:
    log = sent_row("<20260115100000.2.AB@example.com>")
    payload = mailgun_event("delivered", log.esp_message_id, timestamp=1768492900.0)

    assert webhook("mailgun", payload).status_code == 200
    assert webhook("mailgun", payload).status_code == 200

    assert log.events.count() == 1


def test_unknown_message_id_is_accepted_and_ignored(
    webhook: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mailops.tracking")
    log = sent_row("known-id")

    response = webhook("postmark", postmark_delivery("mail-someone-else-sent"))

    assert response.status_code == 200
    assert MailEvent.objects.count() == 0
    assert MailLog.objects.get().status == log.status
    assert "unknown message id 'mail-someone-else-sent' ignored" in caplog.text


# --- authentication -----------------------------------------------------------


@pytest.mark.parametrize(
    "auth", [basic_auth(password="wrong-password"), basic_auth(user="someone"), ""]
)
def test_wrong_or_missing_credentials_get_401_and_change_nothing(
    webhook: Callable[..., Any], caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    log = sent_row("2706ee8a-2222-4285-b032-ccd317af53ed")

    response = webhook("postmark", postmark_bounce(log.esp_message_id), auth=auth)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert MailLog.objects.get().status == MailStatus.SENT
    assert MailEvent.objects.count() == 0
    assert "refused webhook /anymail/postmark/tracking/" in caplog.text
    assert "wrong-password" not in caplog.text
    assert WEBHOOK_PASSWORD not in caplog.text


def test_wrong_credentials_are_refused_for_every_provider(webhook: Callable[..., Any]) -> None:
    log = sent_row("<202601151000.33333333333@smtp-relay.mailin.fr>")
    bad = basic_auth(password="nope")

    brevo = webhook("brevo", brevo_event("delivered", log.esp_message_id, ts_epoch=1), auth=bad)
    mailgun = webhook(
        "mailgun", mailgun_event("delivered", log.esp_message_id, timestamp=1.0), auth=bad
    )

    assert (brevo.status_code, mailgun.status_code) == (401, 401)
    assert MailEvent.objects.count() == 0


def test_mailgun_bad_signature_with_good_credentials_gets_403(
    webhook: Callable[..., Any],
) -> None:
    log = sent_row("<20260115100000.3.CD@example.com>")
    forged = mailgun_event(
        "delivered", log.esp_message_id, timestamp=1768492900.0, signing_key="not-the-key"
    )

    response = webhook("mailgun", forged)

    assert response.status_code == 403
    assert MailLog.objects.get().status == MailStatus.SENT
    assert MailEvent.objects.count() == 0


# --- events racing the delivery run ---------------------------------------------


def test_an_event_for_a_row_still_being_sent_is_retried_later(
    webhook: Callable[..., Any],
) -> None:
    log = sent_row("5b1c7e2a-0000-4c1d-9f00-000000000001", status=MailStatus.SENDING)
    payload = postmark_delivery(log.esp_message_id)

    early = webhook("postmark", payload)

    assert early.status_code == 503
    assert early["Retry-After"] == "60"
    assert MailEvent.objects.count() == 0

    MailLog.objects.filter(pk=log.pk).update(status=MailStatus.SENT)
    retry = webhook("postmark", payload)

    assert retry.status_code == 200
    assert MailLog.objects.get().status == MailStatus.DELIVERED


def test_provider_message_id_is_stored_as_soon_as_the_provider_answers(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    from anymail.signals import post_send

    api = provider_api_factory("postmark")
    settings.MAILERS = {"postmark": api.mailer()}
    seen: list[tuple[str, str]] = []

    def spy(sender: Any, message: Any, status: Any, esp_name: str, **kwargs: Any) -> None:
        # Runs after mailops' receiver, before the chunk's outcomes are written.
        row = MailLog.objects.get(message_id=message.extra_headers["Message-ID"])
        seen.append((row.status, row.esp_message_id))

    post_send.connect(spy)
    try:
        summary = send_test_mail(
            from_addresses(["alice@example.com"]), using="postmark", trigger=MailTrigger.API
        )
    finally:
        post_send.disconnect(spy)

    log = summary.logs().get()
    assert seen == [(MailStatus.SENDING, log.esp_message_id)]
    assert log.esp_message_id


# --- timeline in the admin ----------------------------------------------------------


def test_the_admin_timeline_is_read_only_and_in_time_order(
    make_user: Callable[..., Any], webhook: Callable[..., Any]
) -> None:
    from django.contrib import admin

    log = sent_row("f4830d10-aaaa-4f0c-bca3-3d9b459821f8")
    webhook("postmark", postmark_open(log.esp_message_id))  # arrives first, happened later
    webhook("postmark", postmark_delivery(log.esp_message_id))
    viewer = make_user("auditor", "auditor@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_maillog"))
    request = RequestFactory().get("/")
    request.user = type(viewer).objects.get(pk=viewer.pk)  # fresh permission cache

    inline = MailEventInline(MailLog, admin.site)

    assert [e.event_type for e in inline.get_queryset(request).filter(log=log)] == [
        "delivered",
        "opened",
    ]
    assert inline.has_view_permission(request, log)
    assert not inline.has_add_permission(request, log)
    assert not inline.has_change_permission(request, log)
    assert not inline.has_delete_permission(request, log)
    assert set(inline.get_readonly_fields(request, log)) >= {"event_type", "occurred_at"}


def test_the_timeline_is_hidden_from_users_who_cannot_see_the_log(
    make_user: Callable[..., Any],
) -> None:
    from django.contrib import admin

    request = RequestFactory().get("/")
    request.user = make_user("outsider", "outsider@example.com", is_staff=True)

    assert not MailEventInline(MailLog, admin.site).has_view_permission(request)


def test_webhook_urls_keep_anymails_names() -> None:
    from django.urls import reverse

    assert reverse("anymail:postmark_tracking_webhook") == "/anymail/postmark/tracking/"
    assert reverse("anymail:mailgun_tracking_webhook") == "/anymail/mailgun/tracking/"


def test_secrets_quoted_in_an_event_are_not_kept(
    webhook: Callable[..., Any], settings: Any
) -> None:
    token = "pm-server-token-4b3a2c1d"
    settings.MAILERS = {
        "provider": {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": token},
        }
    }
    log = sent_row("2706ee8a-3333-4285-b032-ccd317af53ed")
    payload = postmark_bounce(log.esp_message_id)
    payload["Details"] = f"smtp;554 5.7.1 rejected, token={token} seen in body"

    assert webhook("postmark", payload).status_code == 200

    log.refresh_from_db()
    event = log.events.get()
    assert token not in event.mta_response
    assert token not in log.error
    assert "554 5.7.1 rejected" in event.mta_response
