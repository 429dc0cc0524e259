"""Bounces in the mail log admin: the entry page section, the "bounce" filter, unmatched reports."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from mailops import permissions
from mailops.bounces import codes
from mailops.models import MailLog, MailStatus, UnmatchedBounce

# The entry page's "Bounce" fieldset (all read-only).
BOUNCE_FIELDS = ("bounce_in_words", "dsn_status", "remote_mta", "bounced_at", "bounce_match")


def has_bounce(log: MailLog) -> bool:
    """Whether a bounce, delay notice or complaint was recorded for this entry."""
    return log.bounced_at is not None or bool(log.dsn_status)


@admin.display(description=_("what happened"))
def bounce_in_words(modeladmin: Any, log: MailLog) -> str:
    """The bounce as a sentence: "the recipient's server said the mailbox does not exist"."""
    if log.status == MailStatus.COMPLAINED:
        return str(_("the recipient reported the message as spam (a complaint)"))
    if log.dsn_status:
        return codes.in_words(log.dsn_status)
    if log.status == MailStatus.DEFERRED:
        return str(_("the recipient's server has not accepted it yet; delivery is being retried"))
    return str(_("the recipient's server refused the message"))


class BounceTypeFilter(admin.SimpleListFilter):
    """Hard bounces (bounced), soft bounces (deferred), complaints."""

    title = _("bounce")
    parameter_name = "bounce"

    STATUSES = {
        "hard": MailStatus.BOUNCED,
        "soft": MailStatus.DEFERRED,
        "complaint": MailStatus.COMPLAINED,
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("hard", _("hard (bounced)")),
            ("soft", _("soft (deferred)")),
            ("complaint", _("complaint")),
            ("any", _("any of these")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[MailLog]) -> QuerySet[MailLog]:
        value = self.value()
        if value in self.STATUSES:
            # The status index answers this (maillog_status_idx).
            return queryset.filter(status=self.STATUSES[value])
        if value == "any":
            return queryset.filter(status__in=list(self.STATUSES.values()))
        return queryset


class UnmatchedBounceAdmin(admin.ModelAdmin):
    """Reports from the mailbox that matched no log entry, or could not be read; read-only."""

    list_display = (
        "received_at",
        "kind",
        "recipient",
        "dsn_status",
        "short_diagnostic",
        "mailer",
        "folder",
        "uid",
    )
    list_filter = ("kind", "mailer")
    search_fields = ("^recipient", "=original_message_id")
    search_help_text = _(
        "Finds reports whose recipient starts with the text, or whose original "
        "Message-ID is exactly the text."
    )
    date_hierarchy = None
    readonly_fields = (
        "created_at",
        "received_at",
        "kind",
        "recipient",
        "original_message_id",
        "dsn_status",
        "remote_mta",
        "diagnostic",
        "report_subject",
        "mailer",
        "mailbox",
        "folder",
        "uid",
    )
    fields = readonly_fields

    @admin.display(description=_("diagnostic"))
    def short_diagnostic(self, report: UnmatchedBounce) -> str:
        return Truncator(report.diagnostic).chars(80)

    # Evidence, like the log: nobody adds or edits it; whoever may read the log may read these.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        return bool(permissions.has_any(user, permissions.READ_MAILLOG))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.is_superuser)


def register_unmatched_bounces(admin_site: AdminSite) -> None:
    """List the unmatched bounce reports on ``admin_site`` (once), beside the log."""
    if not admin_site.is_registered(UnmatchedBounce):
        admin_site.register(UnmatchedBounce, UnmatchedBounceAdmin)
