"""Anymail's webhook views, wrapped: closed unless configured, refusals 401/403, bad input 400.

Anymail's views accept anonymous requests when ``WEBHOOK_SECRET`` is not
set (with a warning), answer 500 when a provider's signing key is missing,
and 500 for a body that is not the JSON they expect. Here: no secret, no
webhook (403); a provider that is not configured is not there (404); a
body that cannot be read is the sender's mistake (400).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import constant_time_compare

from mailops.redaction import redact
from mailops.tracking.events import EventArrivedEarly

logger = logging.getLogger("mailops.tracking")

View = Callable[..., HttpResponse]


def guard_webhook(view: View) -> View:
    """Wrap an anymail webhook view: refusals become 401/403, early events 503.

    Anymail answers a failed basic-auth or signature check with 400; a 401
    with ``WWW-Authenticate`` is what HTTP clients (and Amazon SNS) expect,
    and a 403 says the credentials were fine but the signature was not.
    """
    from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not webhook_secrets():
            logger.warning("refused webhook %s: ANYMAIL WEBHOOK_SECRET is not set", request.path)
            return HttpResponse("Tracking webhooks are not configured.", status=403)
        try:
            return view(request, *args, **kwargs)
        except ImproperlyConfigured as error:
            # A provider whose signing key is not set: as if it were not there.
            logger.warning("webhook %s is not configured: %s", request.path, redact(str(error)))
            return HttpResponse("Tracking webhook not configured.", status=404)
        except AnymailWebhookValidationFailure as error:
            return _refusal(request, str(error))
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError) as error:
            # Not the provider's payload shape (malformed JSON, missing fields);
            # authenticated, so it is worth a line, but never its content.
            logger.warning(
                "webhook %s: payload not understood (%s)", request.path, type(error).__name__
            )
            return HttpResponse("Payload not understood.", status=400)
        except EventArrivedEarly as early:
            logger.info("webhook %s asked to retry: %s", request.path, early)
            response = HttpResponse("Message still being sent; retry later.", status=503)
            response["Retry-After"] = "60"
            return response

    return guarded


def webhook_secrets() -> list[str]:
    """The configured ``ANYMAIL["WEBHOOK_SECRET"]`` values ("user:password"), maybe none."""
    from anymail.utils import get_anymail_setting

    secrets = get_anymail_setting("webhook_secret", default=[])
    if isinstance(secrets, str):
        secrets = [secrets] if secrets else []
    return [secret for secret in secrets if secret]


def _refusal(request: HttpRequest, reason: str) -> HttpResponse:
    from anymail.utils import get_request_basic_auth

    secrets = webhook_secrets()
    presented = get_request_basic_auth(request) or ""
    auth_ok = not secrets or any(constant_time_compare(presented, s) for s in secrets)
    # The reason is anymail's own text; it never contains the credentials.
    logger.warning("refused webhook %s: %s", request.path, reason)
    if not auth_ok:
        response = HttpResponse("Webhook authentication required.", status=401)
        response["WWW-Authenticate"] = 'Basic realm="Anymail WEBHOOK_SECRET"'
        return response
    return HttpResponse("Webhook signature not valid.", status=403)
