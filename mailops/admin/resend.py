"""The mail log's "Resend the selected messages" action, confirmed like ``delete_selected``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from mailops import permissions
from mailops.admin.batch import batch_url
from mailops.admin.confirmation import (
    SendTestMailPermissionMixin,
    confirmation_page,
    is_confirmed,
    require_permission,
    template_names,
)
from mailops.admin.links import changelist_url
from mailops.conf import stored_language
from mailops.models import MailLog
from mailops.services import ResendOutcome, plan_resend, resend_logs

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[MailLog]
else:
    _ModelAdminBase = object

# Selected rows listed on the confirmation page.
RESEND_ROWS_SHOWN = 20
# Original rows per LogEntry insert when recording a resend.
_LOG_CHUNK = 2000


class ResendActionMixin(SendTestMailPermissionMixin, _ModelAdminBase):
    """The ``resend`` action for the mail log admin."""

    resend_confirmation_template: str | list[str] | None = None

    @admin.action(
        permissions=[permissions.SEND_TEST_MAIL_ACTION],
        description=_("Resend the selected messages"),
        location=[admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM],
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[MailLog]) -> HttpResponse | None:
        """Confirm first (like ``delete_selected``), then resend: one new row per message."""
        require_permission(self, request, permissions.SEND_TEST_MAIL_ACTION)
        # Messages that may already have been delivered go again only when ticked.
        include_in_doubt = request.POST.get("include_in_doubt") == "yes"
        plan = plan_resend(queryset, include_in_doubt=include_in_doubt)
        if is_confirmed(request):
            outcomes = resend_logs(queryset, triggered_by=request.user, plan=plan)
            self._record_resends(request, queryset, outcomes)
            self._report_resend(request, plan.not_resent, outcomes)
            return None
        return confirmation_page(
            self,
            request,
            action_name="resend",
            title=_("Resend messages"),
            templates=template_names(
                self, self.resend_confirmation_template, "resend_confirmation"
            ),
            context={
                "plan": plan,
                "deliveries": plan.deliveries(),
                "rows": list(queryset.select_related("user").order_by("-pk")[:RESEND_ROWS_SHOWN]),
                "rows_shown": RESEND_ROWS_SHOWN,
                "confirm_label": _("Yes, resend") if plan.count or plan.in_doubt else "",
            },
        )

    def _record_resends(
        self, request: HttpRequest, queryset: QuerySet[MailLog], outcomes: Sequence[ResendOutcome]
    ) -> None:
        """Note on each original's history which batch resent it."""
        user_id: Any = request.user.pk
        for outcome in outcomes:
            if outcome.summary is None or outcome.summary.batch_id is None:
                continue
            # Stored in the admin history, read later by anyone: the site's language.
            with stored_language():
                message = _("Resent: new entries in batch %(batch)s (trigger resend).") % {
                    "batch": outcome.summary.batch_id
                }
            originals = (
                outcome.group.originals(queryset)
                .select_related(None)
                .order_by("pk")
                .only("pk", "recipient", "status")
            )
            chunk: list[MailLog] = []
            for original in originals.iterator(chunk_size=_LOG_CHUNK):
                chunk.append(original)
                if len(chunk) >= _LOG_CHUNK:
                    LogEntry.objects.log_actions(user_id, chunk, CHANGE, message)
                    chunk = []
            if chunk:
                LogEntry.objects.log_actions(user_id, chunk, CHANGE, message)

    def _report_resend(
        self,
        request: HttpRequest,
        not_resent: dict[str, int],
        outcomes: Sequence[ResendOutcome],
    ) -> None:
        sent = failed = queued = suppressed = 0
        links = []
        for outcome in outcomes:
            summary = outcome.summary
            if summary is None:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d message through %(mailer)s was not resent: %(error)s",
                        "%(count)d messages through %(mailer)s were not resent: %(error)s",
                        outcome.group.count,
                    )
                    % {
                        "count": outcome.group.count,
                        "mailer": outcome.group.mailer,
                        "error": outcome.error,
                    },
                    messages.ERROR,
                )
                continue
            sent, failed, queued = (
                sent + summary.sent,
                failed + summary.failed,
                queued + summary.queued,
            )
            suppressed += summary.suppressed
            list_url = changelist_url(self.admin_site, batch_id=summary.batch_id) or ""
            progress_url = batch_url(self.admin_site.name, summary.batch_id or "")
            links.append((list_url, summary.batch_id, progress_url or list_url))
        for reason, count in not_resent.items():
            self.message_user(
                request,
                ngettext(
                    "%(count)d selected entry was not resent: %(reason)s.",
                    "%(count)d selected entries were not resent: %(reason)s.",
                    count,
                )
                % {"count": count, "reason": reason},
                messages.WARNING,
            )
        if suppressed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d message was not resent: its address is on the suppression "
                    "list (logged as rejected, with the reason).",
                    "%(count)d messages were not resent: their addresses are on the "
                    "suppression list (logged as rejected, with the reason).",
                    suppressed,
                )
                % {"count": suppressed},
                messages.WARNING,
            )
        if not links:
            return
        level = messages.SUCCESS if not failed else messages.WARNING
        self.message_user(
            request,
            format_html(
                "{} {}",
                _("Resent: %(sent)d sent, %(failed)d failed, %(queued)d queued.")
                % {"sent": sent, "failed": failed, "queued": queued},
                format_html_join(
                    ", ",
                    '<a href="{}">{}</a> (<a href="{}">{}</a>)',
                    (
                        (url, _("new batch %(id)s") % {"id": batch}, progress, _("progress"))
                        for url, batch, progress in links
                    ),
                ),
            ),
            level,
        )
