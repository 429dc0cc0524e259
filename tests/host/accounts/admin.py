"""The host's member admin on its console: mailops' action and import/export mixed in."""

from __future__ import annotations

from django.contrib import admin

from mailops.admin import SendTestMailAdminMixin, UserImportExportMixin
from tests.host.accounts.models import Member
from tests.host.admin_site import console


@admin.register(Member, site=console)
class MemberAdmin(SendTestMailAdminMixin, UserImportExportMixin, admin.ModelAdmin):
    list_display = ("handle", "contact_email", "display_name", "is_staff", "is_active")
    search_fields = ("handle", "contact_email")
    exclude = ("password",)
