"""Proof of arrival in the mail log admin: the entry page's fields and the "arrival" filter."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mailops.models import ArrivalStatus, MailLog

# The entry page's "Arrival" fieldset (all read-only).
ARRIVAL_FIELDS = (
    "arrival",
    "arrival_folder",
    "arrived_at",
    "arrival_latency",
    "authentication_results",
    "arrival_error",
    "verified_at",
)
# What the section shows instead until the mailbox was read back.
NOT_VERIFIED_FIELD = "arrival_not_verified"


def was_verified(log: MailLog) -> bool:
    """Whether the mailbox was read back (or is being) for this entry."""
    return bool(log.arrival) or log.verified_at is not None


@admin.display(description=_("arrival"))
def arrival_not_verified(modeladmin: Any, log: MailLog) -> str:
    return gettext("not verified: the recipient's mailbox was not read back")


@admin.display(description=_("latency"))
def arrival_latency(modeladmin: Any, log: MailLog) -> str:
    """From the mailer's acceptance to the receiving server storing it."""
    if log.arrived_at is None:
        return "-"
    seconds = (log.arrived_at - (log.sent_at or log.created_at)).total_seconds()
    return f"{seconds:.0f} s"


class ArrivalFilter(admin.SimpleListFilter):
    """Arrived in inbox / in junk / not verified / not arrived (missing or unreadable)."""

    title = _("arrival")
    parameter_name = "arrival"

    NOT_VERIFIED = "none"
    NOT_ARRIVED = "not_arrived"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            (ArrivalStatus.INBOX, _("arrived in inbox")),
            (ArrivalStatus.JUNK, _("arrived in junk")),
            (self.NOT_VERIFIED, _("not verified")),
            (self.NOT_ARRIVED, _("not arrived")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[MailLog]) -> QuerySet[MailLog]:
        value = self.value()
        if value in (ArrivalStatus.INBOX, ArrivalStatus.JUNK):
            return queryset.filter(arrival=value)
        if value == self.NOT_VERIFIED:
            return queryset.filter(arrival__in=["", ArrivalStatus.PENDING])
        if value == self.NOT_ARRIVED:
            return queryset.filter(arrival__in=[ArrivalStatus.MISSING, ArrivalStatus.ERROR])
        return queryset
