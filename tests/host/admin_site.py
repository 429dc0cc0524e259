"""The host's own admin site: mailops' pages registered on it, as the admin how-to says."""

from __future__ import annotations

from django.contrib import admin

from mailops.admin import MailLogAdmin
from mailops.models import MailLog


class ConsoleSite(admin.AdminSite):
    site_header = "Host console"
    site_title = "Host console"


console = ConsoleSite(name="console")
console.register(MailLog, MailLogAdmin)
