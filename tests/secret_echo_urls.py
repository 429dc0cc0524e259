"""The reference project's URLs plus one view that fails inside smtplib's login."""

from __future__ import annotations

from django.core.mail import mailers
from django.http import HttpRequest, HttpResponse
from django.urls import path

from site_config.urls import urlpatterns as site_urlpatterns


def open_default_mailer(request: HttpRequest) -> HttpResponse:
    """Open the default mailer and let its error through (what a careless view does)."""
    mailers["default"].open()
    return HttpResponse("opened")


urlpatterns = [path("open-mailer/", open_default_mailer), *site_urlpatterns]
