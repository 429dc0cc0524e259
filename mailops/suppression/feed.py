"""What puts an address on the suppression list, and what takes it off.

The seam for delivery events is :func:`suppress_from_event`, run by
:func:`on_delivery_event` for each ``delivery_event_recorded`` signal, which
``mailops.tracking.events.record_delivery_event`` sends: the one function
that records a delivery event (a ``MailEvent``) and applies it to its log
row. **Every source of delivery events must go through that function**:
anymail's tracking webhooks do (``record_tracking_event``), and so do SMTP
bounces and complaints read from a mailbox (``mailops.bounces``). A source
that wrote ``MailEvent`` rows or moved statuses on its own would leave the
list blind to what it saw.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailEvent, MailEventType, MailLog, MailStatus
from mailops.suppression.models import (
    Suppression,
    SuppressionReason,
    normalise_address,
)
from mailops.tracking.events import MAILBOX_SOURCE

logger = logging.getLogger("mailops.suppression")

# The entry's detail column.
_DETAIL_LIMIT = 500
# An enhanced status code (RFC 3463), e.g. 5.1.1; else a basic SMTP reply code.
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([245])\d\d(?=[\s-]|$)")
# anymail "rejected" reasons meaning the address itself is bad.
_REJECTED_AS_BOUNCE = frozenset({"bounced", "invalid"})


def suppress_from_event(event: MailEvent, log: MailLog) -> Suppression | None:
    """Put ``log``'s recipient on the list if ``event`` calls for it; return the entry.

    * ``complained`` → *complaint*, ``unsubscribed`` → *unsubscribe*, at once;
    * ``bounced`` with a permanent status (5.x.x, or none given), and a
      provider's ``rejected`` for a bounced or invalid address → *hard bounce*;
    * ``bounced`` with a temporary status (4.x.x: mailbox full, over quota)
      is a soft bounce: the address is suppressed (*repeated soft bounces*)
      once ``MAILOPS["SOFT_BOUNCE_LIMIT"]`` different messages to it bounced
      softly within ``SOFT_BOUNCE_WINDOW`` seconds, counted from the events.
      A ``deferred`` event (the server is still trying; greylisting) never counts.

    Returns ``None`` when the event does not suppress (opens, deliveries,
    a first soft bounce). Called inside the transaction that records the
    event; every source of delivery events goes through it (module docstring).
    """
    address = normalise_address(log.recipient)
    if not address:
        return None
    reason = _reason_for(event, address)
    if reason is None:
        return None
    return suppress_address(
        address,
        reason=reason,
        detail=event_detail(event),
        source_log=log,
        source_event=event,
    )


def on_delivery_event(
    sender: Any, *, event: MailEvent, log: MailLog, moved: bool = False, **kwargs: Any
) -> None:
    """Receiver of ``delivery_event_recorded``: every new delivery event feeds the list.

    Webhooks and SMTP bounce reading both record through
    ``mailops.tracking.events.record_delivery_event``, which sends the signal
    inside its transaction, so each bounce, complaint and unsubscribe is seen
    once, whatever its source. A bounce or complaint, and any event that moved
    its row to ``bounced`` or ``complained`` (a provider's ``rejected``), also
    re-checks the mailer's rates once the transaction commits, whether or not
    it suppressed (a first soft bounce counts towards the bounce rate too).
    """
    suppress_from_event(event, log)
    moved_to_bounce = moved and log.status in (MailStatus.BOUNCED, MailStatus.COMPLAINED)
    if moved_to_bounce or event.event_type in (MailEventType.BOUNCED, MailEventType.COMPLAINED):
        _check_rates_after_commit(log.mailer)


def _reason_for(event: MailEvent, address: str) -> str | None:
    kind = event.event_type
    if kind == MailEventType.COMPLAINED:
        return SuppressionReason.COMPLAINT
    if kind == MailEventType.UNSUBSCRIBED:
        return SuppressionReason.UNSUBSCRIBE
    if kind == MailEventType.REJECTED and event.reject_reason in _REJECTED_AS_BOUNCE:
        return SuppressionReason.HARD_BOUNCE
    if kind != MailEventType.BOUNCED:
        return None
    if not is_temporary(event):
        return SuppressionReason.HARD_BOUNCE
    if soft_bounces(address, now=timezone.now()) >= get_setting("SOFT_BOUNCE_LIMIT"):
        return SuppressionReason.SOFT_BOUNCES
    return None


def status_class(event: MailEvent) -> str:
    """The first digit of the bounce's status: ``"4"``, ``"5"``, or ``""`` when none is given.

    The event's ``dsn_status`` (set by SMTP bounce reading) wins; else the
    enhanced status code in the receiving server's reply or the description,
    else an SMTP reply code there. Only the event's own words count, never its
    row's ``dsn_status``: that is whatever the row's latest accepted event
    said, which for a second report about the same message (a move the status
    machine refuses) or for an older event counted in the soft-bounce window
    is another event's code.
    """
    if str(event.dsn_status or "")[:1] in ("2", "4", "5"):
        return str(event.dsn_status)[0]
    texts = [event.mta_response, event.description]
    for pattern in (_ENHANCED_STATUS, _SMTP_CODE):
        for text in texts:
            match = pattern.search(text or "")
            if match:
                return match[1]
    return ""


def is_temporary(event: MailEvent) -> bool:
    """Whether a bounce was for a temporary reason (4.x.x / 4xx)."""
    return status_class(event) == "4"


def soft_bounces(address: str, *, now: datetime) -> int:
    """Different messages to ``address`` that bounced softly in the window before ``now``."""
    since = now - timedelta(seconds=float(get_setting("SOFT_BOUNCE_WINDOW")))
    # When the bounce happened (a report's IMAP date, a webhook's timestamp), not
    # when it was recorded: mailbounces --since, or a reader that was down, records
    # months-old reports today, and they must not count as recent.
    happened_since = Q(occurred_at__gte=since) | Q(occurred_at__isnull=True, received_at__gte=since)
    events = MailEvent.objects.filter(
        happened_since,
        event_type=MailEventType.BOUNCED,
        log__recipient__iexact=address,
    ).order_by()
    return len({event.log_id for event in events if is_temporary(event)})


def event_detail(event: MailEvent) -> str:
    """What the receiving side said, for the entry: "5.1.1 mailbox does not exist"."""
    dsn_status = str(event.dsn_status or "")
    if event.esp == MAILBOX_SOURCE:
        # A report read from the mailbox: its description says where it was
        # found ("RFC 3464 report in INBOX: …"), not why the mail failed.
        text = event.mta_response or event.description
    else:
        text = " ".join(filter(None, [event.mta_response, event.description]))
    if dsn_status and dsn_status not in text:
        text = f"{dsn_status} {text}".strip()
    # The event's texts are stored redacted already (tracking.events._text).
    return text[:_DETAIL_LIMIT]


def suppress_address(
    address: str,
    *,
    reason: str = SuppressionReason.MANUAL,
    detail: str = "",
    source_log: MailLog | None = None,
    source_event: MailEvent | None = None,
    added_by: Any = None,
    expires_at: datetime | None = None,
) -> Suppression:
    """Put ``address`` on the list; return its entry.

    An address already suppressed keeps its entry (the first reason is the
    one that counts, and its date is what rejections name); an expired
    entry is renewed with the new reason and date.
    """
    key = normalise_address(address)
    if not key:
        raise ValueError("An empty address cannot be suppressed.")
    values = {
        "reason": reason,
        "detail": detail[:_DETAIL_LIMIT],
        "source_log": source_log,
        "source_event": source_event,
        "added_by": added_by if getattr(added_by, "pk", None) else None,
        "expires_at": expires_at,
        "created_at": timezone.now(),
    }
    for _attempt in range(2):
        existing = Suppression.objects.filter(address=key).first()
        if existing is not None:
            if existing.expires_at is None or existing.expires_at > timezone.now():
                return existing
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            logger.info("suppression of %s renewed (%s)", key, reason)
            return existing
        try:
            # A savepoint: a concurrent insert of the same address must not
            # break the caller's transaction (the webhook's event is kept).
            with transaction.atomic():
                entry = Suppression.objects.create(address=key, **values)
        except IntegrityError:
            continue
        logger.info("%s suppressed (%s)", key, reason)
        return entry
    # Lost the race twice: someone else's entry is the one in force.
    return Suppression.objects.get(address=key)


def unsuppress(addresses: Iterable[str]) -> int:
    """Take ``addresses`` off the list; return how many entries were removed."""
    keys = {normalise_address(address) for address in addresses}
    deleted, _ = Suppression.objects.filter(address__in=keys).delete()
    return deleted


def is_suppressed(address: str) -> bool:
    """Whether ``address`` has an active entry."""
    return Suppression.objects.active().for_address(address).exists()


def _check_rates_after_commit(mailer: str) -> None:
    from mailops import alerts

    transaction.on_commit(lambda: alerts.check_rates(mailer))
