"""The Mailers page's "Check DNS": run the deliverability doctor for one mailer on demand.

``get_mailer_admin_urls`` includes these URLs, so the button works wherever
the Mailers page is served. The check runs only on this POST; the page
itself shows the cached findings (:mod:`mailops.deliverability.report_cache`)
through the ``mailops_doctor`` template tags and never waits for DNS.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from mailops import permissions
from mailops.admin.links import admin_url
from mailops.deliverability.doctor import diagnose_mailer
from mailops.deliverability.report_cache import store_report
from mailops.mailers.info import MailerKind, mailer_info
from mailops.mailers.registry import mailer_aliases


def get_doctor_admin_urls(admin_site: AdminSite) -> list[URLPattern]:
    """``mailers/<alias>/dns/`` (``admin:mailops_mailer_dns``), next to the Mailers page."""

    @require_POST
    def view(request: HttpRequest, alias: str) -> HttpResponse:
        return check_dns_view(request, alias, admin_site)

    return [
        path("mailers/<str:alias>/dns/", admin_site.admin_view(view), name="mailops_mailer_dns")
    ]


def check_dns_view(request: HttpRequest, alias: str, admin_site: AdminSite) -> HttpResponse:
    """Check ``alias``' From domain, cache the findings, and go back to the Mailers page."""
    user: Any = request.user
    # Whoever may see the Mailers page may ask DNS about it: the check is read-only.
    if not permissions.has_any(user, permissions.SEE_MAILERS):
        raise PermissionDenied
    page = admin_url(admin_site, "mailops_mailers") or request.path
    if alias not in mailer_aliases():
        messages.error(request, _("There is no mailer '%(alias)s' to check.") % {"alias": alias})
        return HttpResponseRedirect(page)
    if mailer_info(alias).kind == MailerKind.LOCAL:
        # The page offers no button for these; a stale form or a hand-made POST
        # gets the reason, not a red report about a domain no mail goes to.
        messages.info(
            request,
            _("Mailer “%(alias)s” delivers nowhere (%(what)s): its DNS does not matter.")
            % {"alias": alias, "what": mailer_info(alias).human_description()},
        )
        return HttpResponseRedirect(f"{page}#mailer-{slugify(alias)}")
    cached = store_report(diagnose_mailer(alias))
    values = {
        "alias": alias,
        "domain": cached.report.domain or "?",
        "errors": ngettext("%(count)d error", "%(count)d errors", cached.errors)
        % {"count": cached.errors},
        "warnings": ngettext("%(count)d warning", "%(count)d warnings", cached.warnings)
        % {"count": cached.warnings},
    }
    if cached.errors:
        messages.error(
            request, _("DNS check of %(alias)s (%(domain)s): %(errors)s, %(warnings)s.") % values
        )
    elif cached.warnings:
        messages.warning(request, _("DNS check of %(alias)s (%(domain)s): %(warnings)s.") % values)
    else:
        messages.success(request, _("DNS check of %(alias)s (%(domain)s): no problems.") % values)
    return HttpResponseRedirect(f"{page}#mailer-{slugify(alias)}")
