"""The mail log audit page: read-only list and detail, resend, summary, export.

Built to stay fast at a million rows (see ``bench/audit_page.py``):

* no full-table ``COUNT(*)`` (``show_full_result_count = False``), facets
  off, and the paginator's count comes from the per-status summary query,
  which stops counting after ``count_limit`` rows (``search_count_limit``
  with a search term): above it the page says "more than ..." and pages
  through the first that many entries;
* filters and the date hierarchy read indexes or that same summary instead
  of ``SELECT DISTINCT`` (``mailops.admin.filters``);
* search uses only prefix and exact lookups (see ``search_help_text``),
  which indexes answer (the prefix indexes of migration 0005);
* sorting only by time, which the ``(-created_at, -id)`` index serves;
* the chart's days before today come from Django's cache
  (``MAILOPS["CHART_CACHE_SECONDS"]``), so only today's rows are counted.
"""

from __future__ import annotations

from typing import Any

import django.contrib.admin
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import BadRequest, PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export.admin import ExportMixin

from mailops import permissions, stats
from mailops.admin.arrival import ArrivalFilter
from mailops.admin.batch import get_batch_urls
from mailops.admin.bounces import BounceTypeFilter, register_unmatched_bounces
from mailops.admin.chart_cache import cached_daily_outcomes
from mailops.admin.columns import MailLogColumnsMixin
from mailops.admin.entry import MailLogEntryMixin
from mailops.admin.events import MailEventInline
from mailops.admin.filters import (
    BatchListFilter,
    InDoubtListFilter,
    MailerListFilter,
    date_hierarchy,
    history_for,
)
from mailops.admin.links import admin_url
from mailops.admin.mailers import get_mailer_admin_urls, register_mailers_entry
from mailops.admin.paginator import SummaryPaginator, counted_matches
from mailops.admin.resend import ResendActionMixin
from mailops.admin.verify import get_verify_admin_urls
from mailops.exports.copy_csv import copy_supported, iter_copy_csv
from mailops.exports.resources import EXPORT_FORMATS, MailLogResource, iter_csv
from mailops.models import MailLog, MailStatus
from mailops.retention.history import ClosedDays

_STATUS_LABELS = dict(MailStatus.choices)


@admin.register(MailLog)
class MailLogAdmin(
    MailLogColumnsMixin, MailLogEntryMixin, ResendActionMixin, ExportMixin, admin.ModelAdmin
):
    list_display = (
        "logged_at",
        "recipient_and_user",
        "status_badge",
        "mailer",
        "trigger_and_who",
        "short_subject",
        "short_error",
    )
    list_display_links = ("logged_at", "recipient_and_user")
    list_select_related = ("user", "triggered_by")
    list_filter = (
        "status",
        MailerListFilter,
        "trigger",
        ("in_doubt", InDoubtListFilter),
        # No date filter: the date hierarchy above the list filters by date,
        # and created_at__gte / __lt links still work (a local field's lookups).
        BatchListFilter,
        ArrivalFilter,
        BounceTypeFilter,
    )
    date_hierarchy = "created_at"
    search_fields = ("^recipient", "^subject", "=message_id", "=esp_message_id")
    search_help_text = _(
        "Finds entries whose recipient address or subject starts with the text "
        "(not case-sensitive), or whose Message-ID (with or without < >) or "
        "provider message id is exactly the text. The whole text is one search term."
    )
    # Sorting by any other column would sort the whole table on every page.
    sortable_by = ("logged_at",)
    list_per_page = 50
    list_max_show_all = 500
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # Rows counted per page load at most (stats.COUNT_LIMIT); bounds the page's
    # cost at any log size. Larger lists show "more than ..." instead of counts.
    count_limit = stats.COUNT_LIMIT
    # ... and with a search term: a search's matches are checked row by row
    # (the prefix indexes find candidates, each row is read to confirm it), so
    # counting 20,000 matches of a common prefix took 0.25 s at ten million
    # rows, 1,000 about 20 ms.
    search_count_limit = stats.SEARCH_COUNT_LIMIT
    actions = ["resend"]
    inlines = [MailEventInline]
    change_form_template = "admin/mailops/maillog/change_form.html"
    # ExportMixin renders this template as the changelist (it extends the
    # import-export one, which extends admin/change_list.html).
    import_export_change_list_template = "admin/mailops/maillog/change_list.html"

    resource_classes = [MailLogResource]
    export_template_name = "admin/mailops/import_export/export.html"
    export_formats = EXPORT_FORMATS

    class Media:
        css = {"all": ["mailops/admin.css"]}

    # admin_site's type is written in full: autodoc shows a class's __init__
    # annotations as written, and the API reference links this one to Django's.
    def __init__(self, model: type[MailLog], admin_site: django.contrib.admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        # The Mailers page is a view, not a model: a proxy lists it on the index
        # of whichever site shows the log (admin.site or a project's own).
        register_mailers_entry(admin_site)
        # Reports from the sender's mailbox that matched no entry (mailbounces).
        register_unmatched_bounces(admin_site)

    # --- permissions: the log is evidence ------------------------------------
    # Viewing follows Django's default (view_maillog or change_maillog).

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.is_superuser)

    def has_export_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(self.has_view_permission(request) and user.has_perm(permissions.EXPORT_MAILLOG))

    # --- columns ---------------------------------------------------------------

    @admin.display(description=_("time"), ordering="created_at")
    def logged_at(self, log: MailLog) -> Any:
        return log.created_at

    @admin.display(description=_("status"))
    def status_badge(self, log: MailLog) -> str:
        return format_html(
            '<span class="mailops-badge mailops-status-{}">{}</span>',
            log.status,
            # A dict lookup: get_status_display() rebuilds the choices per call.
            _STATUS_LABELS.get(log.status, log.status),
        )

    def action_checkbox(self, obj: Any) -> SafeString:
        """Django's row checkbox, built directly.

        Django renders a ``CheckboxInput`` through the template engine for
        every row, a good part of the list's rendering time; the markup is
        the same (``actions.js`` finds it by name and class).
        """
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            obj.pk,
            # Django's own message, so its translations apply.
            format_html(gettext("Select this object for an action - {}"), str(obj)),
        )

    @admin.display(description=_("subject"))
    def short_subject(self, log: MailLog) -> str:
        return Truncator(log.subject).chars(60)

    # --- list ------------------------------------------------------------------

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[MailLog], search_term: str
    ) -> tuple[QuerySet[MailLog], bool]:
        """One term, prefix or exact lookups only, so an index can answer.

        Django's default splits the text into words and ANDs them, which makes
        a prefix search for a subject with spaces find nothing; an address or
        a Message-ID has no spaces anyway.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        searched: QuerySet[MailLog] = queryset.search(term)  # type: ignore[attr-defined]
        return searched, False

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[MailLog],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> SummaryPaginator:
        """The paginator whose count is the bounded per-status summary."""
        searched = bool(request.GET.get(SEARCH_VAR, "").strip())
        return SummaryPaginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            count_limit=self.search_count_limit if searched else self.count_limit,
            searched=searched,
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        cl = context.get("cl")
        if cl is None or not isinstance(cl.paginator, SummaryPaginator):
            # A redirect (actions, invalid filters) or an error page.
            return response
        summary = cl.paginator.summary
        # Days closed by a purge are counted from the daily roll-up, when the
        # list's filters can be said there (status, mailer, trigger, dates).
        history = history_for(cl)
        chart = self.list_chart(cl, summary, history)
        shown = stats.summarize_with_history(cl.queryset, history, limit=self.count_limit)
        if not summary.complete:
            # Django's text would name the count as if it were exact.
            context["selection_note_all"] = _(
                "All matching entries selected (more than %(count)s)"
            ) % {"count": summary.total}
        context.update(
            mailops_summary=shown or summary,
            mailops_chart=chart,
            mailops_chart_skipped=chart is None,
            mailops_dates=date_hierarchy(cl, summary.first, summary.last),
            mailers_url=admin_url(self.admin_site, "mailops_mailers"),
        )
        return response

    def list_chart(
        self, cl: ChangeList, summary: stats.LogSummary, history: ClosedDays | None
    ) -> stats.Chart | None:
        """The list's sent/failed chart; for a search, None past ``search_count_limit`` matches.

        Each match of a search is confirmed by reading its row: charting a
        prefix that a million rows start with reads every match of the
        chart's days (0.2 s at ten million rows), and every new search term
        is a list the chart's cache has not seen. A search with fewer
        matches is charted from those rows alone (``pk IN``, as a page's keys).
        """
        queryset = cl.queryset
        if cl.query.strip():
            if not summary.complete:
                return None
            queryset = counted_matches(queryset, summary.total)
        return stats.chart(cached_daily_outcomes(queryset, history=history))

    # --- export --------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = super().get_urls()
        return [
            path(
                "export-csv/",
                self.admin_site.admin_view(self.export_csv_view),
                name="mailops_maillog_export_csv",
            ),
            # The "Mailers" page (mailops.admin.mailers): admin/mailops/maillog/mailers/.
            *get_mailer_admin_urls(self.admin_site),
            # "Send and verify" (mailops.admin.verify): .../mailers/verify/.
            *get_verify_admin_urls(self.admin_site),
            # The batch progress page and its JSON: admin/mailops/maillog/batch/<id>/.
            *get_batch_urls(self.admin_site),
            *urls,
        ]

    def init_request_context_data(self, request: HttpRequest, form: Any) -> dict[str, Any]:
        """The export page's context, with the streamed CSV of the same list for large logs."""
        context: dict[str, Any] = super().init_request_context_data(request, form)
        url = admin_url(self.admin_site, "mailops_maillog_export_csv")
        if url is not None and request.GET:
            url = f"{url}?{request.GET.urlencode()}"
        context["streaming_export_url"] = url
        return context

    def get_export_queryset(self, request: HttpRequest) -> QuerySet[MailLog]:
        """The changelist's rows (filters, search, ordering); bad filters are a 400."""
        try:
            queryset: QuerySet[MailLog] = super().get_export_queryset(request)
        except IncorrectLookupParameters as error:
            raise BadRequest(_("Invalid filter: %(error)s") % {"error": error}) from None
        return queryset

    def export_csv_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """The filtered list as CSV, streamed: memory stays flat at any size.

        import-export's formats build the whole file in memory first; this
        writes rows as they are read, so it suits exports of the whole log.
        Same permission, columns and redaction on every database.
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        queryset = self.get_export_queryset(request)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
        # On PostgreSQL the database writes the CSV (COPY ... TO STDOUT), the
        # same bytes several times faster; elsewhere rows are written here.
        rows = iter_copy_csv(queryset) if copy_supported(queryset) else iter_csv(queryset)
        response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="maillog-{stamp}.csv"'
        return response
