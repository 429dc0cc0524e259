"""Delivery tracking: provider webhook events become ``MailEvent`` rows and statuses.

Anymail serves each provider's webhook at ``/anymail/<esp>/tracking/``,
checks its basic auth (``ANYMAIL["WEBHOOK_SECRET"]``) and signature, and
sends a normalized ``tracking`` signal per event. :func:`record_tracking_event`
finds the ``MailLog`` row by the provider's message id, keeps the event once
(replays are recognised by a fingerprint) and moves the row's status through
``MailLogQuerySet.move_to``, which refuses out-of-order downgrades (a late
``deferred`` never undoes ``delivered``). Opens and clicks are kept as events
without touching the delivery status.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction

from mailops.models import MailEvent, MailEventType, MailLog, MailStatus
from mailops.redaction import redact
from mailops.suppression.feed import suppress_from_event

logger = logging.getLogger("mailops.tracking")

# Provider events that change what the audit row says about delivery.
# "rejected" and "failed" are the provider giving up on a message it had
# accepted (suppressed address, policy block, rendering error): like a
# bounce, the message will not arrive.
STATUS_FOR_EVENT: dict[str, str] = {
    MailEventType.DELIVERED: MailStatus.DELIVERED,
    MailEventType.DEFERRED: MailStatus.DEFERRED,
    MailEventType.BOUNCED: MailStatus.BOUNCED,
    MailEventType.REJECTED: MailStatus.BOUNCED,
    MailEventType.FAILED: MailStatus.BOUNCED,
    MailEventType.COMPLAINED: MailStatus.COMPLAINED,
}

_TEXT_LIMIT = 2000
_URL_LIMIT = 2048
_SMTP_CODE = re.compile(r"(?<![\d.])([245]\d\d)(?=[\s-]|$)")


class EventArrivedEarly(Exception):
    """The event's message is still being sent; the provider should retry later.

    Outcomes of a delivery chunk are written together, so a fast webhook can
    name a row still marked ``sending``. :func:`guard_webhook` answers 503
    with ``Retry-After``; every provider retries webhooks that fail.
    """


def record_tracking_event(event: Any, *, esp_name: str) -> MailEvent | None:
    """Keep one anymail ``AnymailTrackingEvent`` and apply it to its ``MailLog`` row.

    Returns the ``MailEvent`` (the existing one for a replay), or ``None``
    when no row has the event's message id (mail this app did not send).
    Raises :class:`EventArrivedEarly` while the row is still being sent.
    """
    message_id = str(event.message_id or "")
    log = _find_log(message_id, event.recipient) if message_id else None
    if log is None:
        logger.info(
            "%s %s event for unknown message id %r ignored",
            esp_name,
            event.event_type,
            message_id,
        )
        return None
    if log.status == MailStatus.SENDING:
        raise EventArrivedEarly(f"MailLog {log.pk} is still being sent")

    event_type = event.event_type if event.event_type in MailEventType.values else "unknown"
    with transaction.atomic():
        mail_event, created = MailEvent.objects.get_or_create(
            esp=esp_name[:32],
            fingerprint=_fingerprint(log.pk, event),
            defaults={
                "log": log,
                "event_type": event_type,
                "esp_event_id": str(event.event_id or "")[:255],
                "occurred_at": event.timestamp,
                "reject_reason": str(event.reject_reason or "")[:16],
                "description": _text(event.description),
                "mta_response": _text(event.mta_response),
                "click_url": _without_query(event.click_url),
            },
        )
        if not created:
            logger.info("%s %s event for MailLog %s is a replay", esp_name, event_type, log.pk)
            return mail_event
        _apply_status(log, mail_event)
    return mail_event


def _find_log(message_id: str, recipient: str | None) -> MailLog | None:
    rows = list(MailLog.objects.filter(esp_message_id=message_id).order_by("pk")[:10])
    if len(rows) > 1 and recipient:
        # One provider id covering several rows (a multi-recipient send): the
        # event's recipient says which one it is about.
        rows = [row for row in rows if row.recipient.lower() == recipient.lower()] or rows
    return rows[0] if rows else None


def _apply_status(log: MailLog, event: MailEvent) -> None:
    """Apply one new delivery event to its row: the status, and the suppression list.

    Every source of delivery events goes through here (webhooks, SMTP bounces),
    so the suppression list sees each bounce, complaint and unsubscribe once.
    """
    suppress_from_event(event, log)
    new = STATUS_FOR_EVENT.get(event.event_type)
    if new is None:
        return
    fields: dict[str, Any] = {}
    if new == MailStatus.DELIVERED:
        # A delivery settles any earlier deferral note.
        fields.update(error="", smtp_code=None)
    else:
        details = "; ".join(filter(None, [event.description, event.mta_response]))
        reason = event.reject_reason and f" ({event.reject_reason})"
        fields["error"] = f"{event.esp} reported {event.event_type}{reason}" + (
            f": {details}" if details else ""
        )
        fields["smtp_code"] = _smtp_code(event.mta_response)
    moved = MailLog.objects.filter(pk=log.pk).move_to(new, **fields)
    if not moved:
        # Out of order or superseded (e.g. a late "deferred" after "delivered").
        logger.info(
            "MailLog %s keeps its status; %s %s event recorded only",
            log.pk,
            event.esp,
            event.event_type,
        )


def _fingerprint(log_id: int, event: Any) -> str:
    if event.event_id:
        basis = f"id\0{event.event_id}"
    else:
        # Without a provider event id, the same row, type, time and recipient
        # mean the same event delivered twice.
        when = event.timestamp.isoformat() if event.timestamp else ""
        recipient = str(event.recipient or "").lower()
        basis = f"log\0{log_id}\0{event.event_type}\0{when}\0{recipient}"
    return hashlib.sha256(basis.encode()).hexdigest()


def _text(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return redact(text[:_TEXT_LIMIT])


def _without_query(url: Any) -> str:
    if not url:
        return ""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return ""
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))[:_URL_LIMIT]


def _smtp_code(mta_response: str) -> int | None:
    match = _SMTP_CODE.search(mta_response or "")
    return int(match[1]) if match else None
