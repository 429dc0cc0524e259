"""mailops' pages for signed-in users; the reference project mounts them at ``/mail/``."""

from __future__ import annotations

from django.urls import URLPattern, path

from mailops import health_views, views

app_name = "mailops"

urlpatterns: list[URLPattern] = [
    path("", views.self_service, name="self_service"),
    # Monitoring, behind MAILOPS["HEALTH_TOKEN"] (mailops.health_views).
    path("health/", health_views.health, name="health"),
    path("metrics", health_views.metrics, name="metrics"),
]
