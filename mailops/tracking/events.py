"""Delivery tracking: provider webhook events and bounce reports become ``MailEvent`` rows.

Anymail serves each provider's webhook at ``/anymail/<esp>/tracking/``,
checks its basic auth (``ANYMAIL["WEBHOOK_SECRET"]``) and signature, and
sends a normalized ``tracking`` signal per event. :func:`record_tracking_event`
finds the ``MailLog`` row by the provider's message id, keeps the event once
(replays are recognised by a fingerprint) and moves the row's status through
``MailLogQuerySet.move_to``, which refuses out-of-order downgrades (a late
``deferred`` never undoes ``delivered``). Opens and clicks are kept as events
without touching the delivery status. Bounce reports read from the sender's
mailbox (:mod:`mailops.bounces`) take the same path:
:func:`record_delivery_event`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from mailops.models import BounceMatch, MailEvent, MailEventType, MailLog, MailStatus
from mailops.redaction import redact
from mailops.tracking.signals import delivery_event_recorded

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

# MailEvent.esp of the reports mailbounces reads from the sender's mailbox.
MAILBOX_SOURCE = "mailbox"
# How the error text names such a report (stored text: not translated).
_MAILBOX_REPORTS: dict[str, str] = {
    MailEventType.BOUNCED: "bounce",
    MailEventType.DEFERRED: "delay notice",
    MailEventType.COMPLAINED: "complaint",
}

_TEXT_LIMIT = 2000
_URL_LIMIT = 2048
_SMTP_CODE = re.compile(r"(?<![\d.])([245]\d\d)(?=[\s-]|$)")
_ENHANCED_CODE = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")


class EventArrivedEarly(Exception):
    """The event's message is still being sent; the provider should retry later.

    Outcomes of a delivery chunk are written together, so a fast webhook can
    name a row still marked ``sending``. :func:`guard_webhook` answers 503
    with ``Retry-After``; every provider retries webhooks that fail.
    """


@dataclass(frozen=True)
class DeliveryEvent:
    """One thing learned about a sent message, whoever reported it.

    ``source`` is who reported it (an anymail ESP name, or
    ``MAILBOX_SOURCE``, ``"mailbox"``, for reports read from the sender's mailbox) and
    ``fingerprint`` what makes the same report recognisable when it comes
    again: together they are unique among ``MailEvent`` rows. Text fields
    are redacted and shortened when recorded.
    """

    event_type: str
    source: str
    fingerprint: str
    occurred_at: datetime | None = None
    event_id: str = ""
    reject_reason: str = ""
    description: str = ""
    mta_response: str = ""
    click_url: str = ""
    # RFC 3463 enhanced status code ("5.1.1") and the receiving server, when known.
    dsn_status: str = ""
    remote_mta: str = ""
    matched_by: str = ""


def record_delivery_event(log: MailLog, event: DeliveryEvent) -> tuple[MailEvent, bool]:
    """Keep ``event`` as a ``MailEvent`` of ``log`` and apply it to the row: the one path.

    Provider webhooks (``record_tracking_event``) and bounce reading
    (``mailops.bounces``) both record through here, so whatever reacts
    to a bounce or a complaint reacts to each the same way.

    The contract:

    * Returns ``(mail_event, created)``. An event already recorded (same
      ``source`` and ``fingerprint``) is a replay: the existing ``MailEvent``
      is returned with ``created=False`` and nothing else happens.
    * A new event is saved and the row's status moved through the status
      machine (``MailLogQuerySet.move_to``): ``delivered``, ``deferred``,
      ``bounced`` (also for ``rejected``/``failed``) or ``complained``
      (``STATUS_FOR_EVENT``); a move the machine refuses (a late
      ``deferred`` after ``bounced``, anything after ``complained``) leaves
      the status as it is, and the event is still kept. A bounce, delay or
      complaint also writes ``error`` (redacted), ``smtp_code``,
      ``dsn_status``, ``remote_mta``, ``bounced_at`` and ``bounce_match``;
      a delivery clears ``error``, ``smtp_code`` and ``dsn_status``.
    * Then, in the same transaction, ``mailops.tracking.signals.delivery_event_recorded``
      is sent (``event``, ``log`` re-read after the move, ``moved``): a
      receiver that writes to the database commits or rolls back with the event.
    * Raises ``EventArrivedEarly`` while the row is still ``sending``.
    """
    if log.status == MailStatus.SENDING:
        raise EventArrivedEarly(f"MailLog {log.pk} is still being sent")
    event_type = event.event_type if event.event_type in MailEventType.values else "unknown"
    with transaction.atomic():
        mail_event, created = MailEvent.objects.get_or_create(
            esp=event.source[:32],
            fingerprint=event.fingerprint,
            defaults={
                "log": log,
                "event_type": event_type,
                "esp_event_id": event.event_id[:255],
                "occurred_at": event.occurred_at,
                "reject_reason": event.reject_reason[:16],
                "description": _text(event.description),
                "mta_response": _text(event.mta_response),
                "click_url": _without_query(event.click_url),
                "dsn_status": event.dsn_status[:16],
                "remote_mta": _text(event.remote_mta)[:255],
                "matched_by": event.matched_by,
            },
        )
        if not created:
            logger.info("%s %s event for MailLog %s is a replay", event.source, event_type, log.pk)
            return mail_event, False
        moved = _apply_status(log, mail_event)
        log.refresh_from_db()
        delivery_event_recorded.send(sender=MailEvent, event=mail_event, log=log, moved=moved)
    return mail_event, True


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
    mail_event, _created = record_delivery_event(
        log,
        DeliveryEvent(
            event_type=str(event.event_type or ""),
            source=esp_name,
            fingerprint=_fingerprint(log.pk, event),
            occurred_at=event.timestamp,
            event_id=str(event.event_id or ""),
            reject_reason=str(event.reject_reason or ""),
            description=str(event.description or ""),
            mta_response=str(event.mta_response or ""),
            click_url=str(event.click_url or ""),
            matched_by=BounceMatch.PROVIDER_ID,
        ),
    )
    return mail_event


def _find_log(message_id: str, recipient: str | None) -> MailLog | None:
    rows = list(MailLog.objects.filter(esp_message_id=message_id).order_by("pk")[:10])
    if len(rows) > 1 and recipient:
        # One provider id covering several rows (a multi-recipient send): the
        # event's recipient says which one it is about.
        rows = [row for row in rows if row.recipient.lower() == recipient.lower()] or rows
    return rows[0] if rows else None


def _apply_status(log: MailLog, event: MailEvent) -> bool:
    new = STATUS_FOR_EVENT.get(event.event_type)
    if new is None:
        return False
    fields: dict[str, Any] = {}
    if new == MailStatus.DELIVERED:
        # A delivery settles any earlier deferral note.
        fields.update(error="", smtp_code=None, dsn_status="")
    else:
        fields.update(
            error=_error_text(event),
            smtp_code=_smtp_code(event.mta_response),
            dsn_status=event.dsn_status or _enhanced_code(event.mta_response),
            remote_mta=event.remote_mta,
            bounced_at=event.occurred_at or timezone.now(),
            bounce_match=event.matched_by,
        )
    moved = MailLog.objects.filter(pk=log.pk).move_to(new, **fields)
    if not moved:
        # Out of order or superseded (e.g. a late "deferred" after "delivered").
        logger.info(
            "MailLog %s keeps its status; %s %s event recorded only",
            log.pk,
            event.esp,
            event.event_type,
        )
    return bool(moved)


def _error_text(event: MailEvent) -> str:
    if event.esp == MAILBOX_SOURCE:
        # A report read from the mailbox: what it was, its code, the server's words.
        code = f" ({event.dsn_status})" if event.dsn_status else ""
        details = event.mta_response or event.description
        what = _MAILBOX_REPORTS.get(event.event_type, event.event_type)
        return f"{what}{code}" + (f": {details}" if details else "")
    details = "; ".join(filter(None, [event.description, event.mta_response]))
    reason = event.reject_reason and f" ({event.reject_reason})"
    return f"{event.esp} reported {event.event_type}{reason}" + (f": {details}" if details else "")


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


def _enhanced_code(mta_response: str) -> str:
    match = _ENHANCED_CODE.search(mta_response or "")
    return match[1] if match else ""
