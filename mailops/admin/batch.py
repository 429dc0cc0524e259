"""The batch page in the admin (``admin:mailops_batch``) and the JSON it polls.

Wired in from ``MailLogAdmin.get_urls()``: ``admin/mailops/maillog/batch/<id>/``
and its numbers at ``.../batch/<id>/progress.json`` (``admin:mailops_batch_progress``).
The numbers come from :func:`mailops.sending.progress.batch_progress`.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from mailops import permissions
from mailops.admin.links import admin_url, with_query
from mailops.models import MailLog, MailStatus
from mailops.sending.progress import batch_progress

TEMPLATE = "admin/mailops/maillog/batch_progress.html"
# How often the page asks for new numbers while the batch is unfinished.
POLL_INTERVAL_MS = 2000
# Without JavaScript the page reloads itself this often instead.
NOSCRIPT_REFRESH_SECONDS = 5


def get_batch_urls(admin_site: AdminSite) -> list[URLPattern]:
    """URL patterns for the batch page and its JSON, to prepend to ``MailLogAdmin.get_urls()``."""

    def page(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
        return batch_view(request, admin_site, batch_id)

    def numbers(request: HttpRequest, batch_id: uuid.UUID) -> HttpResponse:
        return batch_progress_json(request, batch_id)

    return [
        path("batch/<uuid:batch_id>/", admin_site.admin_view(page), name="mailops_batch"),
        path(
            "batch/<uuid:batch_id>/progress.json",
            admin_site.admin_view(numbers),
            name="mailops_batch_progress",
        ),
    ]


def may_view(request: HttpRequest) -> bool:
    user: Any = request.user
    return permissions.has_any(user, permissions.READ_MAILLOG)


def batch_url(admin_site_name: str, batch_id: uuid.UUID | str) -> str | None:
    """The batch page's URL, or ``None`` when this admin site does not serve it."""
    try:
        key = uuid.UUID(str(batch_id))
    except ValueError:
        return None
    return admin_url(admin_site_name, "mailops_batch", batch_id=key)


def batch_view(request: HttpRequest, admin_site: AdminSite, batch_id: uuid.UUID) -> HttpResponse:
    """The batch's numbers, a bar and links; it refreshes itself while unfinished."""
    if not may_view(request):
        raise PermissionDenied
    progress = batch_progress(batch_id)
    if progress is None:
        raise Http404(_("There is no batch %(id)s in the mail log.") % {"id": batch_id})
    request.current_app = admin_site.name
    changelist = admin_url(admin_site, "mailops_maillog_changelist")
    context = {
        **admin_site.each_context(request),
        "title": _("Batch %(id)s") % {"id": batch_id},
        "subtitle": None,
        "progress": progress,
        "numbers": progress.as_dict(),
        "segments": progress.segments(),
        "triggered_by": _user(progress.triggered_by_id),
        "progress_url": admin_url(admin_site, "mailops_batch_progress", batch_id=batch_id),
        "poll_interval_ms": POLL_INTERVAL_MS,
        "noscript_refresh_seconds": NOSCRIPT_REFRESH_SECONDS,
        "batch_list_url": with_query(changelist, batch_id=batch_id),
        "failures_url": with_query(changelist, batch_id=batch_id, status__exact=MailStatus.FAILED),
        "changelist_url": changelist,
        "app_name": MailLog._meta.app_config.verbose_name,
        "app_url": admin_url(admin_site, "app_list", app_label=MailLog._meta.app_label),
        "maillog_name": MailLog._meta.verbose_name_plural,
    }
    return TemplateResponse(request, TEMPLATE, context)


def batch_progress_json(request: HttpRequest, batch_id: uuid.UUID) -> JsonResponse:
    """What the page polls: :meth:`BatchProgress.as_dict`, or a 404 with an error."""
    if not may_view(request):
        raise PermissionDenied
    progress = batch_progress(batch_id)
    if progress is None:
        return JsonResponse(
            {"error": _("There is no batch %(batch)s in the mail log.") % {"batch": batch_id}},
            status=404,
        )
    return JsonResponse(progress.as_dict())


def _user(pk: Any) -> Any:
    if pk is None:
        return None
    return get_user_model()._default_manager.filter(pk=pk).first()
