"""A URLconf that serves the admin "Mailers" page without relying on MailLogAdmin.

It mounts ``get_mailer_admin_urls(admin.site)`` where ``MailLogAdmin.get_urls()``
would (``admin/mailops/maillog/mailers/``, name ``admin:mailops_mailers``), so
these tests do not depend on how the MailLog admin is wired.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from mailops.admin.mailers import get_mailer_admin_urls

admin_patterns = [
    path("mailops/maillog/", include(get_mailer_admin_urls(admin.site))),
    *admin.site.get_urls(),
]

urlpatterns = [
    path("admin/", include((admin_patterns, "admin"), namespace=admin.site.name)),
]
