"""The Mailers page's "Send and verify": one test mail to the mailer's mailbox, read back.

The message is sent in the request (one message, like "Send test mail");
reading the mailbox back, which can take minutes, runs in the task worker
when one is configured. Without one (Django's ImmediateBackend) it runs in
the request, and reading ends ``VERIFY_ADMIN_TIMEOUT`` seconds after the
request began, whatever the IMAP server does (the send before it is bounded
by the mailer's own timeout). Either way the page redirects to the batch
page of the send, and the entry page shows arrival.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mailops import permissions
from mailops import tasks as delivery_tasks
from mailops.admin.batch import batch_url
from mailops.admin.links import admin_url, maillog_entry_url
from mailops.arrival.mailboxes import mailbox_for
from mailops.arrival.tasks import enqueue_verification
from mailops.arrival.verify import has_trusted_verdict
from mailops.conf import get_setting
from mailops.models import MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail


def get_verify_admin_urls(admin_site: AdminSite) -> list[URLPattern]:
    """The POST-only URL of "Send and verify", to add to ``MailLogAdmin.get_urls()``."""

    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        return send_and_verify_view(request, admin_site)

    return [path("mailers/verify/", admin_site.admin_view(view), name="mailops_mailers_verify")]


def send_and_verify_view(request: HttpRequest, admin_site: AdminSite) -> HttpResponse:
    started = time.monotonic()
    user: Any = request.user
    if not user.has_perm(permissions.SEND_TEST_MAIL):
        raise PermissionDenied
    mailers_page = admin_url(admin_site, "mailops_mailers") or request.path
    alias = request.POST.get("alias", "")
    try:
        mailbox = mailbox_for(alias)
    except ImproperlyConfigured as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(mailers_page)
    if mailbox is None:
        messages.error(
            request, _("Mailer '%(alias)s' has no mailbox to verify arrival in.") % {"alias": alias}
        )
        return HttpResponseRedirect(mailers_page)
    summary = send_test_mail(
        from_addresses([mailbox.address]),
        using=alias,
        trigger=MailTrigger.ADMIN_ACTION,
        triggered_by=user,
        abort_on_rejected=True,
    )
    assert summary.batch_id is not None
    target = batch_url(admin_site.name, summary.batch_id) or mailers_page
    if not summary.sent:
        log = summary.logs().first()
        reason = log.error if log is not None else ""
        messages.error(request, _("Not sent: %(reason)s") % {"reason": reason})
        return HttpResponseRedirect(target)
    if delivery_tasks.runs_elsewhere():
        enqueue_verification(summary.batch_id, timeout=float(get_setting("VERIFY_TIMEOUT")))
        log = summary.logs().first()
        entry = maillog_entry_url(admin_site, log.pk if log is not None else 0)
        text = _(
            "Sent to %(address)s. The task worker reads %(mailbox)s back for up to "
            "%(timeout)s s; the mail log entry shows where it arrived."
        ) % {
            "address": mailbox.address,
            "mailbox": mailbox.username,
            "timeout": get_setting("VERIFY_TIMEOUT"),
        }
        messages.info(request, format_html('{} <a href="{}">{}</a>', text, entry, _("Open it")))
        return HttpResponseRedirect(target)
    # ImmediateBackend: the task runs inside enqueue(), so its row is written on return.
    # The limit counts from the request's start: what the send took is not read time.
    left = float(get_setting("VERIFY_ADMIN_TIMEOUT")) - (time.monotonic() - started)
    enqueue_verification(summary.batch_id, timeout=max(left, 0.0))
    _report(request, summary.logs().first())
    return HttpResponseRedirect(target)


def _report(request: HttpRequest, log: Any) -> None:
    """Say what the (inline) verification found, from the row it wrote."""
    if log is None or not log.arrival:
        messages.error(request, _("Arrival could not be verified; see the server log."))
    elif log.arrival == "inbox" and not has_trusted_verdict(log.authentication_results):
        messages.warning(
            request,
            _("Arrived in %(folder)s, but with %(verdicts)s.")
            % {"folder": log.arrival_folder, "verdicts": log.authentication_results},
        )
    elif log.arrival == "inbox":
        messages.success(
            request,
            _("Arrived in %(folder)s (%(verdicts)s).")
            % {"folder": log.arrival_folder, "verdicts": log.authentication_results or "-"},
        )
    elif log.arrival == "junk":
        messages.warning(
            request,
            _("Landed in junk folder %(folder)s (%(verdicts)s).")
            % {"folder": log.arrival_folder, "verdicts": log.authentication_results or "-"},
        )
    else:
        messages.error(request, _("Not verified: %(error)s") % {"error": log.arrival_error})
