"""Anymail's webhook URLs, guarded by :func:`mailops.tracking.guard_webhook`.

Include instead of ``anymail.urls`` (same paths, same ``anymail`` namespace)::

    path("anymail/", include("mailops.webhook_urls")),
"""

from __future__ import annotations

from anymail import urls as anymail_urls
from django.urls import URLPattern

from mailops.tracking import guard_webhook

app_name = "anymail"

urlpatterns = [
    URLPattern(pattern.pattern, guard_webhook(pattern.callback), pattern.default_args, pattern.name)
    for pattern in anymail_urls.urlpatterns
    if isinstance(pattern, URLPattern)
]
