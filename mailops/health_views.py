"""``/mail/health/`` and ``/mail/metrics``: for monitoring, behind a bearer token.

Both answer only ``Authorization: Bearer <MAILOPS["HEALTH_TOKEN"]>``. With no
token configured they answer 403 to everyone: an unprotected health page
would tell anyone which mailers fail, and a guessable default is worse.
A wrong or missing token gets 401 with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from mailops.alerts import update_alerts
from mailops.arrival.health import (
    WORKING_STATES,
    HealthState,
    alert_conditions,
    all_mailer_health,
)
from mailops.arrival.metrics import render_metrics
from mailops.conf import get_setting

View = Callable[[HttpRequest], HttpResponse]


def bearer_token_required(view: View) -> View:
    """Refuse the request unless it carries the configured bearer token."""

    @wraps(view)
    def wrapped(request: HttpRequest) -> HttpResponse:
        expected = str(get_setting("HEALTH_TOKEN") or "")
        if not expected:
            return HttpResponse(
                "Disabled: set MAILOPS_HEALTH_TOKEN (MAILOPS['HEALTH_TOKEN']) to enable.\n",
                status=403,
                content_type="text/plain; charset=utf-8",
            )
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            response = HttpResponse(
                "A valid bearer token is required.\n",
                status=401,
                content_type="text/plain; charset=utf-8",
            )
            response["WWW-Authenticate"] = 'Bearer realm="mailops"'
            return response
        return view(request)

    return wrapped


@require_GET
@never_cache
@bearer_token_required
def health(request: HttpRequest) -> HttpResponse:
    """Per-mailer state as JSON: 200 when every mailer is ok, 503 otherwise."""
    now = timezone.now()
    mailers = all_mailer_health(now=now)
    ok = all(m.state in WORKING_STATES for m in mailers)
    # Each check is also when alerts notice a rate or canary change (once per crossing).
    update_alerts({m.mailer: alert_conditions(m) for m in mailers})
    payload = {
        "ok": ok,
        # True when a mailer's bounce or complaint rate is over its threshold.
        "warning": any(m.state == HealthState.WARNING for m in mailers),
        "checked_at": now.isoformat(),
        "mailers": {m.mailer: m.as_dict(now) for m in mailers},
    }
    return JsonResponse(payload, status=200 if ok else 503)


@require_GET
@never_cache
@bearer_token_required
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics (text exposition format)."""
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
