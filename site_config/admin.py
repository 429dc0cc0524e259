"""The reference project's user admin: Django's, plus test mail and import/export.

Any project can do the same with its own (custom) user admin: mix in
``SendTestMailAdminMixin`` and, for recipient lists, ``UserImportExportMixin``.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model

from mailops.user_admin import SendTestMailAdminMixin, UserImportExportMixin

User = get_user_model()

admin.site.site_header = "mailops"
admin.site.site_title = "mailops"
admin.site.index_title = "Mail operations and site administration"

# django.contrib.auth registered its own UserAdmin first (it comes earlier in
# INSTALLED_APPS); this one replaces it.
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(SendTestMailAdminMixin, UserImportExportMixin, auth_admin.UserAdmin):
    pass
