"""The delivery timeline shown on a mail log entry's admin page.

Add ``MailEventInline`` to ``MailLogAdmin.inlines``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from mailops import permissions
from mailops.models import MailEvent


class MailEventInline(admin.TabularInline):
    """What the provider reported about the message, oldest first; read-only."""

    model = MailEvent
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("occurred_at", "id")
    fields = (
        "occurred_at",
        "event_type",
        "esp",
        "description",
        "mta_response",
        "reject_reason",
        "click_url",
        "received_at",
    )
    readonly_fields = fields
    verbose_name = gettext_lazy("provider event")
    verbose_name_plural = gettext_lazy("delivery timeline (provider events)")

    # Events are evidence: nobody adds, edits or deletes them by hand. Whoever
    # may see the log entry may see its timeline.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        return bool(permissions.has_any(user, permissions.READ_MAILLOG))
