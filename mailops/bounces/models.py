"""What bounce reading remembers: how far it read each folder, and reports that matched nothing.

Imported by :mod:`mailops.models` (the app's models module), so these are
``mailops`` models like the others.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailboxCursor(models.Model):
    """How far ``mailbounces`` has read one folder of one mailbox.

    IMAP gives each message a UID that only grows within a folder, as long
    as the folder's UIDVALIDITY stays the same (RFC 3501 §2.3.1.1). So
    "every UID above ``last_uid``" is exactly the new messages; when the
    server reports another UIDVALIDITY (the folder was recreated), the UIDs
    mean something else and the folder is read again from the start (the
    events' fingerprints keep that from counting a report twice).
    """

    # The account, without the password: "user@host:port".
    mailbox = models.CharField(_("mailbox"), max_length=320)
    folder = models.CharField(_("folder"), max_length=255)
    uidvalidity = models.BigIntegerField(_("UIDVALIDITY"))
    last_uid = models.BigIntegerField(_("last UID read"), default=0)
    updated_at = models.DateTimeField(_("read at"), auto_now=True)

    class Meta:
        verbose_name = _("mailbox read position")
        verbose_name_plural = _("mailbox read positions")
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "folder"], name="mailboxcursor_unique")
        ]

    def __str__(self) -> str:
        return f"{self.mailbox} {self.folder}: UID {self.last_uid} ({self.uidvalidity})"


class UnmatchedKind(models.TextChoices):
    """What an unmatched report said, or why it could not be read."""

    BOUNCED = "bounced", _("Bounce")
    DEFERRED = "deferred", _("Delay notice")
    COMPLAINED = "complained", _("Complaint")
    # A message that looked like a report but could not be understood, or
    # was too large to read: kept so that nobody has to trust it was nothing.
    UNREADABLE = "unreadable", _("Could not be read")


class UnmatchedBounce(models.Model):
    """A report from the mailbox that no ``MailLog`` row was found for (or that could not be read).

    Kept, not dropped: it may be about mail sent before mailops logged it, by
    another program with the same sender, or about a row since deleted.
    """

    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)
    # When the report arrived in the mailbox (IMAP INTERNALDATE).
    received_at = models.DateTimeField(_("received"), null=True, blank=True)
    mailer = models.CharField(_("mailer"), max_length=64)
    mailbox = models.CharField(_("mailbox"), max_length=320)
    folder = models.CharField(_("folder"), max_length=255)
    uid = models.BigIntegerField(_("UID"))
    kind = models.CharField(_("kind"), max_length=16, choices=UnmatchedKind.choices)
    recipient = models.CharField(_("recipient"), max_length=320, blank=True)
    original_message_id = models.CharField(_("original Message-ID"), max_length=255, blank=True)
    dsn_status = models.CharField(_("DSN status"), max_length=16, blank=True)
    remote_mta = models.CharField(_("remote server"), max_length=255, blank=True)
    # The receiving server's words (redacted), or why the message was not read.
    diagnostic = models.TextField(_("diagnostic"), blank=True)
    report_subject = models.CharField(_("report subject"), max_length=255, blank=True)
    # One row per report and recipient, however often the folder is read.
    fingerprint = models.CharField(_("fingerprint"), max_length=64, unique=True, editable=False)

    class Meta:
        verbose_name = _("unmatched bounce report")
        verbose_name_plural = _("unmatched bounce reports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.recipient or '?'} ({self.folder} {self.uid})"
