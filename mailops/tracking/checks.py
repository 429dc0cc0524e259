"""``check --deploy``: tracking webhooks served without a secret would take forged events."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from mailops.tracking.guards import webhook_secrets

# A webhook every anymail version serves: if it reverses, the tracking URLs are mounted.
PROBE_URL_NAME = "anymail:postmark_tracking_webhook"


def check_tracking_webhooks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """mailops.E020: tracking URLs mounted while ``ANYMAIL["WEBHOOK_SECRET"]`` is empty."""
    try:
        reverse(PROBE_URL_NAME)
    except NoReverseMatch:
        return []
    if webhook_secrets():
        return []
    return [
        checks.Error(
            _(
                "Tracking webhooks are mounted (anymail/ URLs) but ANYMAIL['WEBHOOK_SECRET'] "
                "is empty: every webhook request is refused (403), so no delivery event is "
                "recorded."
            ),
            hint=_(
                "Set ANYMAIL_WEBHOOK_SECRET to a random 'user:password' and give the "
                "same credentials to each provider's webhook URL, or remove the anymail/ URLs."
            ),
            id="mailops.E020",
        )
    ]
