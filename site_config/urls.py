from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in for every user (the admin's own login turns away non-staff users),
    # so the self-service page at /mail/ works for them: LOGIN_URL = "login".
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("mail/", include("mailops.urls")),
    # Provider tracking webhooks: /anymail/<esp>/tracking/ (basic auth: ANYMAIL WEBHOOK_SECRET).
    # mailops.webhook_urls = anymail.urls answering bad credentials with 401/403.
    path("anymail/", include("mailops.webhook_urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
