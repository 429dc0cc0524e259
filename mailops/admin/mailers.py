"""The admin's "Mailers" page: each configured alias, its last check and send, a check button.

Wire it into the admin from ``MailLogAdmin.get_urls()``::

    def get_urls(self):
        return get_mailer_admin_urls(self.admin_site) + super().get_urls()

which serves it at ``admin/mailops/maillog/mailers/`` as ``admin:mailops_mailers``.
The page shows what :mod:`mailops.mailers.info` reads from ``MAILERS``: never
a password or any other option but host, port, TLS mode and user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _

from mailops import permissions
from mailops.admin.doctor import get_doctor_admin_urls
from mailops.admin.links import admin_url, maillog_entry_url
from mailops.alerts import MailerRates, mailer_rates
from mailops.arrival.mailboxes import verifiable_aliases
from mailops.conf import get_setting
from mailops.mailers.connection import CheckOutcome, can_verify, verify_connection
from mailops.mailers.info import MailerInfo, MailerKind, configured_mailers
from mailops.mailers.registry import mailer_aliases
from mailops.models import ACCEPTED_STATUSES, MailersEntry, MailLog, MailStatus

TEMPLATE = "admin/mailops/mailers.html"

CHECK_STATUSES = (MailStatus.CHECKED, MailStatus.CHECK_FAILED)
SEND_STATUSES = (*ACCEPTED_STATUSES, MailStatus.FAILED)


@dataclass(frozen=True)
class MailerRow:
    """One line of the page: the mailer and its latest outcomes."""

    info: MailerInfo
    is_default: bool
    # False: "Check connection" can only say so (a provider without a probe).
    check_supported: bool
    last_check: MailLog | None
    last_check_url: str | None
    last_send: MailLog | None
    last_send_url: str | None
    # Bounces and complaints of the last 24 hours (mailops.alerts).
    rates: MailerRates | None = None

    @property
    def rate_warnings(self) -> list[str]:
        """The rates over their thresholds, as /mail/health/ words them."""
        return list(self.rates.warnings().values()) if self.rates else []

    @property
    def delivers_nowhere(self) -> bool:
        """A local mailer: no connection to check, no DNS that matters."""
        return self.info.kind == MailerKind.LOCAL

    @property
    def default_note(self) -> bool:
        """Say "default mailer" after the alias, unless the alias already says so."""
        return self.is_default and self.info.alias != "default"

    @property
    def backend_parts(self) -> list[str]:
        """The dotted backend path in pieces, so the page can wrap it at the dots."""
        return self.info.backend.split(".")


def get_mailer_admin_urls(admin_site: AdminSite) -> list[URLPattern]:
    """URL patterns for the page, to prepend to ``MailLogAdmin.get_urls()``."""

    def view(request: HttpRequest) -> HttpResponse:
        return mailers_view(request, admin_site)

    return [
        path("mailers/", admin_site.admin_view(view), name="mailops_mailers"),
        *get_doctor_admin_urls(admin_site),
    ]


class MailersEntryAdmin(admin.ModelAdmin):
    """The "Mailers" row of the admin index and app list: its link opens the Mailers page.

    Registered by ``MailLogAdmin`` on the same site, so the page is listed
    on any ``AdminSite`` that lists the mail log. Whoever may see the page
    (``permissions.SEE_MAILERS``) sees the row; nothing can be added,
    changed or deleted through it.
    """

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return permissions.has_any(request.user, permissions.SEE_MAILERS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # Only the changelist name the app list links to; it opens the page.
        opts = self.model._meta
        return [
            path(
                "",
                self.admin_site.admin_view(self.mailers_redirect),
                name=f"{opts.app_label}_{opts.model_name}_changelist",
            )
        ]

    def mailers_redirect(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        url = admin_url(self.admin_site, "mailops_mailers")
        if url is None:
            # MailLogAdmin serves the page; this site shows the entry without it.
            raise Http404
        return HttpResponseRedirect(url)


def register_mailers_entry(admin_site: AdminSite) -> None:
    """List the Mailers page on ``admin_site``'s index (once)."""
    if not admin_site.is_registered(MailersEntry):
        admin_site.register(MailersEntry, MailersEntryAdmin)


def mailers_view(request: HttpRequest, admin_site: AdminSite) -> HttpResponse:
    """GET lists the mailers; POST ``alias`` checks one and redirects back."""
    user: Any = request.user
    if not permissions.has_any(user, permissions.SEE_MAILERS):
        raise PermissionDenied
    can_check = user.has_perm(permissions.SEND_TEST_MAIL)
    if request.method == "POST":
        if not can_check:
            raise PermissionDenied
        return _check_connection(request)
    request.current_app = admin_site.name
    context = {
        **admin_site.each_context(request),
        "title": _("Mailers"),
        "subtitle": None,
        "rows": mailer_rows(admin_site),
        "can_check": can_check,
        "app_name": MailLog._meta.app_config.verbose_name,
        "app_url": admin_url(admin_site, "app_list", app_label=MailLog._meta.app_label),
        "changelist_url": admin_url(admin_site, "mailops_maillog_changelist"),
        "maillog_name": MailLog._meta.verbose_name_plural,
        # "Send and verify" (mailops.arrival) for mailers with a mailbox.
        "verify_aliases": verifiable_aliases(),
        "verify_url": admin_url(admin_site, "mailops_mailers_verify"),
    }
    return TemplateResponse(request, TEMPLATE, context)


def mailer_rows(admin_site: AdminSite) -> list[MailerRow]:
    """Every configured mailer with its latest check and its latest send outcome."""
    default = get_setting("DEFAULT_MAILER")
    rows = []
    mailers = configured_mailers()
    rates = mailer_rates([info.alias for info in mailers])
    for info in mailers:
        logs = MailLog.objects.filter(mailer=info.alias).order_by("-created_at", "-id")
        # Filtering on status (not trigger) lets the status index find the few checks.
        last_check = logs.filter(status__in=CHECK_STATUSES).first()
        last_send = logs.filter(status__in=SEND_STATUSES).first()
        rows.append(
            MailerRow(
                info=info,
                is_default=info.alias == default,
                check_supported=can_verify(info),
                last_check=last_check,
                last_check_url=_log_url(admin_site, last_check),
                last_send=last_send,
                last_send_url=_log_url(admin_site, last_send),
                rates=rates.get(info.alias),
            )
        )
    return rows


def _check_connection(request: HttpRequest) -> HttpResponse:
    alias = request.POST.get("alias", "")
    if alias not in mailer_aliases():
        messages.error(request, _("There is no mailer '%(alias)s' to check.") % {"alias": alias})
        return HttpResponseRedirect(request.path)
    result = verify_connection(alias, triggered_by=request.user)
    text = f"{alias}: {result.summary()}"
    if result.warnings:
        text += " (" + "; ".join(f"warning: {warning}" for warning in result.warnings) + ")"
    if result.ok:
        messages.success(request, _("Connection check passed: %(text)s") % {"text": text})
    elif result.outcome == CheckOutcome.LOCAL:
        # Nothing was checked (and nothing logged): information, not a pass.
        messages.info(
            request, _("Mailer “%(alias)s”: %(text)s.") % {"alias": alias, "text": result.summary()}
        )
    elif result.outcome == CheckOutcome.UNSUPPORTED:
        messages.warning(request, _("Connection not verified: %(text)s") % {"text": text})
    else:
        messages.error(request, _("Connection check failed: %(text)s") % {"text": text})
    return HttpResponseRedirect(request.path)


def _log_url(admin_site: AdminSite, log: MailLog | None) -> str | None:
    if log is None:
        return None
    return maillog_entry_url(admin_site, log.pk)
