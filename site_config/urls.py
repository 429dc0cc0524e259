from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mail/", include("mailops.urls")),
    # Sign-in, sign-out and password reset for every user (plain templates in
    # templates/registration/): the self-service page is for non-staff too.
    path("accounts/", include("django.contrib.auth.urls")),
    # Provider tracking webhooks: /anymail/<esp>/tracking/ (basic auth: ANYMAIL WEBHOOK_SECRET).
    # mailops.webhook_urls = anymail.urls answering bad credentials with 401/403.
    path("anymail/", include("mailops.webhook_urls")),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]
