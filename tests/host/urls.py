"""The host's URLs: its own admin site at /console/, no ``admin.site``."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.host.admin_site import console

urlpatterns = [
    path("console/", console.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("mail/", include("mailops.urls")),
    path("anymail/", include("mailops.webhook_urls")),
]
