"""mailops' pages for signed-in users; the reference project mounts them at ``/mail/``."""

from __future__ import annotations

from django.urls import URLPattern, path

from mailops import views

app_name = "mailops"

urlpatterns: list[URLPattern] = [
    path("", views.self_service, name="self_service"),
]
