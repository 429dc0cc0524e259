"""The suppression list: addresses mailops no longer sends to, and why."""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from mailops.conf import stored_language


class SuppressionReason(models.TextChoices):
    """Why an address is on the list: a ``Suppression``'s ``reason``."""

    HARD_BOUNCE = "hard_bounce", _("Hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
    COMPLAINT = "complaint", _("Complaint")
    UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
    MANUAL = "manual", _("Added by hand")


# How a reason reads in a log row's error when the entry has no detail. Log
# errors are written in the site's language (mailops.conf.stored_language).
REASON_TEXT: dict[str, Promise] = {
    SuppressionReason.HARD_BOUNCE: pgettext_lazy("suppression reason", "hard bounce"),
    SuppressionReason.SOFT_BOUNCES: pgettext_lazy("suppression reason", "repeated soft bounces"),
    SuppressionReason.COMPLAINT: _("the recipient complained (spam report)"),
    SuppressionReason.UNSUBSCRIBE: _("the recipient unsubscribed"),
    SuppressionReason.MANUAL: pgettext_lazy("suppression reason", "added by hand"),
}


def rejection_template() -> str:
    """The wording of a suppressed recipient's error, with ``%(since)s`` and ``%(reason)s``.

    Call it inside ``stored_language()``: the text goes into a row.
    """
    return gettext("suppressed since %(since)s: %(reason)s")


def normalise_address(address: str) -> str:
    """``address`` as the list keys it: the bare address, trimmed, all lower case.

    The local part is lower-cased too. RFC 5321 lets a server treat
    ``John@`` and ``john@`` as two mailboxes, but the providers that matter
    (Gmail, Microsoft, Yahoo, Exchange, Postfix and Exim defaults) do not, and
    a bounce for one spelling must stop mail to the other: suppressing too
    much costs a rare case-sensitive mailbox one test mail; suppressing too
    little costs the sender's reputation. The same rule is applied in SQL
    (``LOWER(TRIM(email))``) for user selections.
    """
    text = str(address or "").strip()
    bare = parseaddr(text)[1] if "<" in text else text
    return bare.strip().lower()


class SuppressionQuerySet(models.QuerySet["Suppression"]):
    def active(self, *, now: datetime | None = None) -> SuppressionQuerySet:
        """Entries in force: without an expiry, or expiring later than ``now``."""
        now = now or timezone.now()
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def for_address(self, address: str) -> SuppressionQuerySet:
        return self.filter(address=normalise_address(address))


class Suppression(models.Model):
    """One address mailops does not send to (test mails; site mail if configured)."""

    # normalise_address(): lower case, bare. One entry per address.
    address = models.CharField(_("address"), max_length=320, unique=True)
    reason = models.CharField(_("reason"), max_length=16, choices=SuppressionReason.choices)
    # What the receiving side said, e.g. "5.1.1 mailbox does not exist" (redacted).
    detail = models.CharField(_("detail"), max_length=500, blank=True)
    # What put the address here. SET_NULL: purging old log rows (and their
    # events) keeps the suppression and leaves no dangling reference.
    source_log = models.ForeignKey(
        "mailops.MailLog",
        verbose_name=_("source log entry"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source_event = models.ForeignKey(
        "mailops.MailEvent",
        verbose_name=_("source event"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("suppressed since"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("added by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("manage_suppression", _("Can add, remove and import suppressed addresses")),
        ]
        indexes = [models.Index(fields=["reason", "-created_at"], name="suppression_reason_idx")]

    def __str__(self) -> str:
        return f"{self.address} ({self.get_reason_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Every way in (admin form, import, code) keys the address the same way.
        self.address = normalise_address(self.address)
        super().save(*args, **kwargs)

    @property
    def rejection_reason(self) -> str:
        """The error a rejected log row gets: "suppressed since 2026-12-01: 5.1.1 ..."."""
        return rejection_reason(self.created_at, self.reason, self.detail)


def rejection_reason(created_at: datetime, reason: str, detail: str) -> str:
    """The one wording of a suppressed recipient's error (SQL: ``selection.rejection_text``)."""
    local = timezone.localtime(created_at) if timezone.is_aware(created_at) else created_at
    since = local.date().isoformat()
    # Stored in the row: in the site's language, whoever's request caused it.
    with stored_language():
        words = detail or str(REASON_TEXT.get(reason, reason))
        return rejection_template() % {"since": since, "reason": words}
