"""Anymail's webhook views, wrapped: refusals become 401/403, early events 503."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare

from mailops.tracking.events import EventArrivedEarly

logger = logging.getLogger("mailops.tracking")

View = Callable[..., HttpResponse]


def guard_webhook(view: View) -> View:
    """Wrap an anymail webhook view: refusals become 401/403, early events 503.

    Anymail answers a failed basic-auth or signature check with 400; a 401
    with ``WWW-Authenticate`` is what HTTP clients (and Amazon SNS) expect,
    and a 403 says the credentials were fine but the signature was not.
    """
    from anymail.exceptions import AnymailWebhookValidationFailure

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as error:
            return _refusal(request, str(error))
        except EventArrivedEarly as early:
            logger.info("webhook %s asked to retry: %s", request.path, early)
            response = HttpResponse("Message still being sent; retry later.", status=503)
            response["Retry-After"] = "60"
            return response

    return guarded


def _refusal(request: HttpRequest, reason: str) -> HttpResponse:
    from anymail.utils import get_anymail_setting, get_request_basic_auth

    secrets = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secrets, str):
        secrets = [secrets] if secrets else []
    presented = get_request_basic_auth(request) or ""
    auth_ok = not secrets or any(constant_time_compare(presented, s) for s in secrets)
    # The reason is anymail's own text; it never contains the credentials.
    logger.warning("refused webhook %s: %s", request.path, reason)
    if not auth_ok:
        response = HttpResponse("Webhook authentication required.", status=401)
        response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
        return response
    return HttpResponse("Webhook signature not valid.", status=403)
