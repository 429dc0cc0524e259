"""Self-service: "Send me a test mail", for any signed-in user.

GET shows the page; POST sends one test mail to the user's own address
through the service and redirects back (post/redirect/get) with a message.
Sends are limited per user: ``MAILOPS["SELF_SERVICE_LIMIT"]`` per
``MAILOPS["SELF_SERVICE_WINDOW"]`` seconds, counted from the mail log, so
the limit holds across processes and restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from mailops import services
from mailops.conf import get_setting
from mailops.recipients import address_of, email_field_name
from mailops.redaction import redact
from mailops.sending.self_service import counted_sends, self_service_sends

logger = logging.getLogger("mailops.views")

# Rows shown under "Your recent test mails".
RECENT_RESULTS = 5


@dataclass(frozen=True)
class SendAllowance:
    """How many self-service sends a user has left in the current window."""

    limit: int
    window: int
    used: int
    # When the next send becomes possible, if none is left now.
    next_at: datetime | None

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def allowance_for(user: Any, *, now: datetime | None = None) -> SendAllowance:
    """The user's allowance, counted from the mail log (any process, any restart)."""
    limit = int(get_setting("SELF_SERVICE_LIMIT"))
    window = int(get_setting("SELF_SERVICE_WINDOW"))
    now = now or timezone.now()
    recent = counted_sends(user, window=window)
    used = recent.count()
    next_at = None
    if used >= limit:
        # A send frees up when the row that put the user at the limit ages out.
        times = recent.order_by("created_at").values_list("created_at", flat=True)
        index = used - limit
        oldest = times[index] if limit > 0 else None
        next_at = oldest + timedelta(seconds=window) if oldest else None
    return SendAllowance(limit=limit, window=window, used=used, next_at=next_at)


@login_required
@csrf_protect
@require_http_methods(["GET", "POST"])
def self_service(request: HttpRequest) -> HttpResponse:
    """Show the "Send me a test mail" page, or send (POST) and redirect back to it."""
    user: Any = request.user
    if request.method == "POST":
        _send_to_self(request, user)
        return redirect("mailops:self_service")

    allowance = allowance_for(user)
    address = _address_of(user)
    # A plain page (mailops/base.html), not an admin one: the signed-in user may
    # be no admin, and the project may mount no admin site or a site of its own.
    context = {
        "title": _("Send me a test mail"),
        "address": address,
        "allowance": allowance,
        "window_text": _window_text(allowance.window),
        "next_in": timeuntil(allowance.next_at) if allowance.next_at else "",
        "can_send": bool(address) and allowance.remaining > 0,
        "recent": self_service_sends(user).order_by("-created_at", "-id")[:RECENT_RESULTS],
    }
    return TemplateResponse(request, "mailops/self_service.html", context)


def _send_to_self(request: HttpRequest, user: Any) -> None:
    address = _address_of(user)
    if not address:
        messages.warning(
            request,
            _(
                "Your account has no email address, so there is nowhere to send a test "
                "mail. Ask an administrator to add one."
            ),
        )
        return
    allowance = allowance_for(user)
    if allowance.limit <= 0:
        messages.warning(request, _("Sending test mails from this page is turned off."))
        return
    try:
        # The service checks the limit again, under a lock: concurrent
        # requests cannot pass it, and a refusal is logged as a row.
        summary = services.send_self_service_mail(user, using=get_setting("DEFAULT_MAILER"))
    except ImproperlyConfigured as error:
        logger.error("self-service test mail not sent: %s", redact(str(error)))
        messages.error(
            request,
            _(
                "Sending test mail is not set up correctly on this site, so nothing was "
                "sent. Please tell an administrator."
            ),
        )
        return
    if summary.limited:
        _report_limit(request, allowance_for(user))
        return
    _report(request, summary, address)


def _report_limit(request: HttpRequest, allowance: SendAllowance) -> None:
    messages.warning(
        request,
        _(
            "You have already sent %(used)d test mails in the last %(window)s, the "
            "most allowed. You can send the next one in %(wait)s."
        )
        % {
            "used": allowance.used,
            "window": _window_text(allowance.window),
            "wait": timeuntil(allowance.next_at) if allowance.next_at else "?",
        },
    )


def _report(request: HttpRequest, summary: services.SendSummary, address: str) -> None:
    if summary.sent:
        messages.success(
            request,
            _(
                "A test mail was sent to %(address)s. It should arrive within a few "
                "minutes; if it does not, check your spam folder."
            )
            % {"address": address},
        )
    elif summary.queued:
        messages.info(
            request,
            _("Your test mail to %(address)s is queued and will be sent shortly.")
            % {"address": address},
        )
    elif summary.suppressed:
        # The reason is what the receiving side said about the address: the user's own.
        reason = summary.invalid[0].error if summary.invalid else ""
        messages.error(
            request,
            _(
                "No mail was sent to %(address)s: mail to it could not be delivered before "
                "(%(reason)s), so it is on the suppression list. If the mailbox works again, "
                "ask an administrator to remove it from the list."
            )
            % {"address": address, "reason": reason},
        )
    elif summary.rejected:
        messages.error(
            request,
            _(
                "Your email address %(address)s is not valid, so no mail was sent. "
                "Ask an administrator to correct it."
            )
            % {"address": address},
        )
    else:
        messages.error(
            request,
            _(
                "The test mail to %(address)s could not be sent. The reason is recorded "
                "in the mail log; please tell an administrator."
            )
            % {"address": address},
        )


def _address_of(user: Any) -> str:
    return address_of(getattr(user, email_field_name(), ""))


def _window_text(seconds: int) -> str:
    """3600 -> "hour", 7200 -> "2 hours", 90 -> "90 seconds": how the window reads."""
    if seconds and seconds % 86400 == 0:
        n = seconds // 86400
        return _("day") if n == 1 else ngettext("%(n)d day", "%(n)d days", n) % {"n": n}
    if seconds and seconds % 3600 == 0:
        n = seconds // 3600
        return _("hour") if n == 1 else ngettext("%(n)d hour", "%(n)d hours", n) % {"n": n}
    if seconds and seconds % 60 == 0:
        n = seconds // 60
        return _("minute") if n == 1 else ngettext("%(n)d minute", "%(n)d minutes", n) % {"n": n}
    return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}
