"""A log row's statuses and triggers, and which status may follow which.

``MailLogQuerySet`` (in :mod:`mailops.models`) moves rows only along
``ALLOWED_TRANSITIONS``; this module holds the rules, the models hold the data.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailStatus(models.TextChoices):
    """Where a ``MailLog`` row is: its ``status``."""

    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    REJECTED = "rejected", _("Rejected")
    DELIVERED = "delivered", _("Delivered")
    BOUNCED = "bounced", _("Bounced")
    DEFERRED = "deferred", _("Deferred")
    COMPLAINED = "complained", _("Complained")
    CHECKED = "checked", _("Connection checked")
    CHECK_FAILED = "check_failed", _("Connection check failed")
    # Site mail not sent to this recipient: the address is on the suppression
    # list (MAILOPS["SUPPRESS_SITE_MAIL"]). Test mails to one are "rejected".
    SUPPRESSED = "suppressed", _("Suppressed")


class ArrivalStatus(models.TextChoices):
    """What reading the mailbox back showed (``""``: never verified)."""

    # "Send and verify" handed the reading to the task worker; not read yet.
    PENDING = "pending", _("Being verified")
    INBOX = "inbox", _("Arrived in the inbox")
    JUNK = "junk", _("Arrived in junk")
    MISSING = "missing", _("Did not arrive in time")
    ERROR = "error", _("Mailbox could not be read")


class BounceMatch(models.TextChoices):
    """How a bounce, delay notice or complaint found its ``MailLog`` row."""

    # The provider's message id of a tracking webhook.
    PROVIDER_ID = "provider_id", _("Provider message id")
    # The original's Message-ID, returned in the report (the sure way).
    MESSAGE_ID = "message_id", _("Message-ID")
    # Only the recipient and the time: the report returned no Message-ID of ours.
    RECIPIENT_TIME = "recipient_time", _("Recipient and time (weaker)")


class MailTrigger(models.TextChoices):
    """What started a send: a ``MailLog`` row's ``trigger``."""

    ADMIN_ACTION = "admin_action", _("Admin action")
    COMMAND = "command", _("Management command")
    SELF_SERVICE = "self_service", _("Self-service")
    RESEND = "resend", _("Resend")
    API = "api", _("API")
    CHECK = "check", _("Connection check")
    # Any other message the site sent (mailops.audit, MAILOPS["AUDIT_ALL_MAIL"]).
    SITE = "site", _("Site mail")


class MailEventType(models.TextChoices):
    """Anymail's normalized tracking event types."""

    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    REJECTED = "rejected", _("Rejected")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    DEFERRED = "deferred", _("Deferred")
    DELIVERED = "delivered", _("Delivered")
    AUTORESPONDED = "autoresponded", _("Autoresponded")
    OPENED = "opened", _("Opened")
    CLICKED = "clicked", _("Clicked")
    COMPLAINED = "complained", _("Complained")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    SUBSCRIBED = "subscribed", _("Subscribed")
    UNKNOWN = "unknown", _("Unknown")


# Which status may follow which. Provider events (delivered, bounced, ...)
# may arrive late or out of order, so tracking states may move among
# themselves; a message never goes back to "queued" once a server took it.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    MailStatus.QUEUED: frozenset({MailStatus.SENDING, MailStatus.FAILED}),
    MailStatus.SENDING: frozenset({MailStatus.SENT, MailStatus.FAILED, MailStatus.QUEUED}),
    MailStatus.FAILED: frozenset({MailStatus.QUEUED}),
    MailStatus.SENT: frozenset(
        {
            MailStatus.DELIVERED,
            MailStatus.BOUNCED,
            MailStatus.DEFERRED,
            MailStatus.COMPLAINED,
        }
    ),
    MailStatus.DEFERRED: frozenset(
        {
            MailStatus.DELIVERED,
            MailStatus.BOUNCED,
            MailStatus.DEFERRED,
            MailStatus.COMPLAINED,
        }
    ),
    MailStatus.DELIVERED: frozenset({MailStatus.BOUNCED, MailStatus.COMPLAINED}),
    MailStatus.BOUNCED: frozenset({MailStatus.COMPLAINED}),
    MailStatus.COMPLAINED: frozenset(),
    MailStatus.REJECTED: frozenset(),
    MailStatus.CHECKED: frozenset(),
    MailStatus.CHECK_FAILED: frozenset(),
    MailStatus.SUPPRESSED: frozenset(),
}

# Statuses meaning "the mailer accepted the message" (or a later, better state).
ACCEPTED_STATUSES = frozenset(
    {
        MailStatus.SENT,
        MailStatus.DELIVERED,
        MailStatus.DEFERRED,
        MailStatus.BOUNCED,
        MailStatus.COMPLAINED,
    }
)


# Statuses of a row that has no outcome yet.
UNFINISHED_STATUSES = (MailStatus.QUEUED, MailStatus.SENDING)


def can_transition(current: str, new: str) -> bool:
    return new in ALLOWED_TRANSITIONS.get(current, frozenset())


def sources_of(new: str) -> list[str]:
    """Every status from which ``new`` may be reached."""
    return [status for status, targets in ALLOWED_TRANSITIONS.items() if new in targets]
