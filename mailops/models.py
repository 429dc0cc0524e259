"""The audit trail: one ``MailLog`` row per attempt to send one message."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# Bounce reading's own records: defined in mailops.bounces, part of this app.
from mailops.bounces.models import MailboxCursor, UnmatchedBounce
from mailops.exceptions import InvalidTransition

# SUBJECT_PREFIX_LENGTH: importers from here (migration 0005, the admin) keep working.
from mailops.querysets import OUTCOME_FIELDS, SUBJECT_PREFIX_LENGTH, MailLogQuerySet
from mailops.retention.models import MailDailyCount
from mailops.statuses import (
    ACCEPTED_STATUSES,
    ALLOWED_TRANSITIONS,
    UNFINISHED_STATUSES,
    ArrivalStatus,
    BounceMatch,
    MailEventType,
    MailStatus,
    MailTrigger,
    can_transition,
    sources_of,
)
from mailops.suppression.models import Suppression, SuppressionReason

# Importers of the statuses from here (the documented path) keep working.
__all__ = [
    "ACCEPTED_STATUSES",
    "ALLOWED_TRANSITIONS",
    "BATCH_FIELDS",
    "OUTCOME_FIELDS",
    "SUBJECT_PREFIX_LENGTH",
    "UNFINISHED_STATUSES",
    "AlertState",
    "ArrivalStatus",
    "BatchFields",
    "BounceMatch",
    "InvalidTransition",
    "MailDailyCount",
    "MailEvent",
    "MailEventType",
    "MailLog",
    "MailLogQuerySet",
    "MailStatus",
    "MailTrigger",
    "MailboxCursor",
    "MailersEntry",
    "PendingBatch",
    "SendingProgress",
    "Suppression",
    "SuppressionReason",
    "UnmatchedBounce",
    "batch_values",
    "can_transition",
    "sources_of",
]


class BatchFields(models.Model):
    """What every row of one batch shares: defined once, for the log and for pending batches."""

    mailer = models.CharField(_("mailer"), max_length=64)
    backend = models.CharField(_("backend"), max_length=255, blank=True)
    from_email = models.CharField(_("from"), max_length=320, blank=True)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    body = models.TextField(_("body"), blank=True)
    trigger = models.CharField(_("trigger"), max_length=16, choices=MailTrigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("triggered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Who started the batch when no Django user is known: the operating-system
    # user who ran the command (sendtestmail), as text.
    triggered_by_name = models.CharField(
        _("triggered by (name)"), max_length=150, blank=True, default="", db_default=""
    )

    class Meta:
        abstract = True


class MailLog(BatchFields):
    """One attempt to send one message to one recipient, and what became of it."""

    # Indexed through maillog_recent_idx (created_at DESC, id DESC), which also
    # serves date ranges: a second index would only slow every insert.
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    status = models.CharField(
        _("status"), max_length=16, choices=MailStatus.choices, default=MailStatus.QUEUED
    )
    recipient = models.CharField(_("recipient"), max_length=320)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="mail_logs",
    )
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    esp_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    error = models.TextField(_("error"), blank=True)
    smtp_code = models.PositiveSmallIntegerField(_("SMTP code"), null=True, blank=True)
    batch_id = models.UUIDField(_("batch"), default=uuid.uuid4)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Token of the delivery run that moved the row to "sending".
    claimed_by = models.CharField(_("claimed by"), max_length=32, blank=True, editable=False)
    # A queued row is not picked up before this time (retry backoff, daily quota).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    # The whole message went out and no reply came back: it may have been
    # delivered, so it is never retried automatically (the admin asks first).
    in_doubt = models.BooleanField(_("may have been delivered"), default=False)

    # Proof of arrival (mailops.arrival): set once the mailbox was read back.
    arrival = models.CharField(
        _("arrival"), max_length=8, choices=ArrivalStatus.choices, blank=True, default=""
    )
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True)
    arrival_folder = models.CharField(_("arrival folder"), max_length=255, blank=True)
    # The receiving server's verdicts, e.g. "spf=pass dkim=pass dmarc=pass".
    authentication_results = models.TextField(_("authentication results"), blank=True)
    arrival_error = models.TextField(_("why arrival was not proven"), blank=True)

    # The last bounce, delay notice or complaint (read from the sender's
    # mailbox by mailbounces, or reported by a provider's webhook).
    # The enhanced status code (RFC 3463), e.g. "5.1.1"; the text is in error.
    dsn_status = models.CharField(
        _("DSN status"), max_length=16, blank=True, default="", db_default=""
    )
    remote_mta = models.CharField(
        _("remote server"), max_length=255, blank=True, default="", db_default=""
    )
    bounced_at = models.DateTimeField(_("bounce received"), null=True, blank=True)
    bounce_match = models.CharField(
        _("bounce matched by"),
        max_length=16,
        choices=BounceMatch.choices,
        blank=True,
        default="",
        db_default="",
    )

    objects = MailLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("mail log entry")
        verbose_name_plural = _("mail log entries")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("send_test_mail", _("Can send test mail")),
            ("export_maillog", _("Can export the mail log")),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="maillog_recent_idx"),
            models.Index(fields=["status", "-created_at"], name="maillog_status_idx"),
            models.Index(fields=["mailer", "-created_at"], name="maillog_mailer_idx"),
            models.Index(fields=["trigger", "-created_at"], name="maillog_trigger_idx"),
            # With id last, a delivery run's claim (a batch's queued rows in
            # id order, LIMIT n) reads n entries instead of sorting every
            # queued row of the batch: each chunk of a large batch costs the same.
            models.Index(fields=["batch_id", "status", "id"], name="maillog_batch_status_idx"),
            models.Index(fields=["recipient"], name="maillog_recipient_idx"),
            models.Index(fields=["message_id"], name="maillog_message_id_idx"),
            models.Index(fields=["esp_message_id"], name="maillog_esp_id_idx"),
            # The daily quota counts what one mailer sent in the last 24 hours.
            # Partial: a queued row (no sent_at yet) costs this index nothing,
            # and "sent_at >= x" implies the condition on PostgreSQL and SQLite.
            models.Index(
                fields=["mailer", "sent_at"],
                name="maillog_mailer_sent_part_idx",
                condition=models.Q(sent_at__isnull=False),
            ),
            # Workers and lease recovery look for due queued / stale sending rows.
            models.Index(fields=["status", "next_attempt_at"], name="maillog_due_idx"),
            # /mail/health/ asks per mailer for the last failure and the last
            # canaries. Both are rare among a million rows, so walking the
            # mailer index would read most of it; partial indexes hold only
            # those rows (and cost an ordinary insert nothing).
            models.Index(
                fields=["mailer", "-created_at"],
                name="maillog_mailer_failed_idx",
                condition=models.Q(status=MailStatus.FAILED),
            ),
            models.Index(
                fields=["mailer", "-verified_at"],
                name="maillog_mailer_verified_idx",
                condition=models.Q(verified_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        # Connection checks have no recipient, and a user without an address
        # is logged with an empty one: name what the row is about instead.
        if self.trigger == MailTrigger.CHECK:
            subject = gettext("mailer %(alias)s") % {"alias": self.mailer}
        else:
            subject = self.recipient or gettext("(no address)")
        return f"{subject} ({self.get_status_display()})"

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED_STATUSES

    def set_status(self, new: str) -> None:
        """Change the in-memory status, refusing moves the lifecycle forbids."""
        if not can_transition(self.status, new):
            raise InvalidTransition(f"MailLog {self.pk}: {self.status} -> {new} is not allowed")
        self.status = new


class MailersEntry(MailLog):
    """The admin app list's "Mailers" row; holds no data of its own.

    The admin lists registered models only, so the Mailers page (a view, not
    a model) needs one to appear on the index of any ``AdminSite``. A proxy
    adds no table; ``MailLogAdmin`` registers it wherever it is registered.
    """

    class Meta:
        proxy = True
        verbose_name = _("mailer")
        verbose_name_plural = _("mailers")
        # Who may see the page follows the mail log's permissions (SEE_MAILERS).
        default_permissions = ()


class MailEvent(models.Model):
    """One thing a provider reported about a sent message (delivery, bounce, open...).

    Only normalized, redacted fields are kept, never the raw webhook payload:
    providers put addresses, IP addresses, locations, user agents and subjects
    there, which the timeline does not need and the log should not hoard.
    """

    log = models.ForeignKey(
        MailLog, verbose_name=_("mail log entry"), on_delete=models.CASCADE, related_name="events"
    )
    event_type = models.CharField(_("event"), max_length=16, choices=MailEventType.choices)
    esp = models.CharField(_("provider"), max_length=32)
    esp_event_id = models.CharField(_("provider event id"), max_length=255, blank=True)
    # What makes a replayed webhook recognisable: a hash of the provider's
    # event id, or (without one) of the row, type and time. Unique per provider.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, editable=False)
    occurred_at = models.DateTimeField(_("occurred"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    reject_reason = models.CharField(_("reject reason"), max_length=16, blank=True)
    description = models.TextField(_("description"), blank=True)
    mta_response = models.TextField(_("receiving server's reply"), blank=True)
    # Scheme, host and path only: query strings often carry personal tokens.
    click_url = models.CharField(_("clicked link"), max_length=2048, blank=True)
    # Bounce reports (RFC 3464) name these; provider webhooks rarely do.
    dsn_status = models.CharField(
        _("DSN status"), max_length=16, blank=True, default="", db_default=""
    )
    remote_mta = models.CharField(
        _("remote server"), max_length=255, blank=True, default="", db_default=""
    )
    matched_by = models.CharField(
        _("matched by"),
        max_length=16,
        choices=BounceMatch.choices,
        blank=True,
        default="",
        db_default="",
    )

    class Meta:
        verbose_name = _("mail event")
        verbose_name_plural = _("mail events")
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["esp", "fingerprint"], name="mailevent_unique_per_esp")
        ]
        indexes = [models.Index(fields=["log", "occurred_at"], name="mailevent_timeline_idx")]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} ({self.esp})"


class SendingProgress(models.Model):
    """How far one connection got through one claimed chunk (``mailops.sending.wire``)."""

    # The chunk's claim token (``MailLog.claimed_by``).
    token = models.CharField(_("claim"), max_length=32, db_index=True, editable=False)
    # The row whose message is going out (committed before its final ".").
    on_wire = models.BigIntegerField(_("on the wire"), null=True, editable=False)
    # Rows done on this connection, space-separated: "pk" accepted, "-pk" not delivered.
    done = models.TextField(_("done"), blank=True, default="", editable=False)

    class Meta:
        verbose_name = _("sending progress")
        verbose_name_plural = _("sending progress")

    def __str__(self) -> str:
        return f"{self.token}: {self.on_wire} on the wire"


class PendingBatch(BatchFields):
    """A large user selection whose queued rows a worker writes, a chunk at a time.

    Writing 100,000 log rows takes seconds (each row feeds every index of
    the mail log), longer than an admin request should. So above
    ``MAILOPS["WRITE_IN_REQUEST_LIMIT"]`` users the request stores the
    selected ids and what to send here, and a task writes the rows (then
    delivers them). ``written`` counts the ids already turned into rows, so
    a task that is run twice, or resumed by ``mailops_deliver``, writes each
    row once. The record is deleted with the last chunk.
    """

    batch_id = models.UUIDField(_("batch"), primary_key=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    # A JSON list, kept as text: a JSONField's system check would need a
    # database connection on SQLite, and nothing here queries inside it.
    selected_ids = models.TextField(_("selected user ids"), blank=True, editable=False)
    expected = models.PositiveIntegerField(_("rows to write"))
    written = models.PositiveIntegerField(_("ids turned into rows"), default=0)

    class Meta:
        verbose_name = _("batch being written")
        verbose_name_plural = _("batches being written")

    def __str__(self) -> str:
        return f"{self.batch_id} ({self.written} of {self.expected} written)"

    @property
    def user_ids(self) -> list[Any]:
        return list(json.loads(self.selected_ids)) if self.selected_ids else []

    @user_ids.setter
    def user_ids(self, ids: list[Any]) -> None:
        # DjangoJSONEncoder: a custom user model's key may be a UUID.
        self.selected_ids = json.dumps(ids, cls=DjangoJSONEncoder) if ids else ""

    @property
    def unwritten(self) -> int:
        """Rows the worker has still to write (they count as queued)."""
        return max(0, self.expected - self.written)

    def row_template(self) -> MailLog:
        """The row every selected user's log entry is written from."""
        return MailLog(batch_id=self.batch_id, **batch_values(self))


# What every row of one batch shares (the attribute names, for copying).
BATCH_FIELDS = tuple(field.attname for field in BatchFields._meta.fields)


def batch_values(source: MailLog | PendingBatch) -> dict[str, Any]:
    """The batch-wide values of a row or a pending batch."""
    return {name: getattr(source, name) for name in BATCH_FIELDS}


class AlertState(models.Model):
    """Whether one alert condition is raised now (``mailops.alerts``).

    Kept so the alert webhook hears of each crossing once: when a condition
    becomes true, and when it clears, not on every check in between.
    """

    # "<mailer>:<condition>", e.g. "default:bounce_rate".
    key = models.CharField(_("alert"), max_length=160, unique=True)
    raised = models.BooleanField(_("raised"), default=False)
    changed_at = models.DateTimeField(_("changed"), auto_now=True)
    detail = models.CharField(_("detail"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.key}: {'raised' if self.raised else 'clear'}"
