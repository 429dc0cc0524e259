"""The mail log list's compact columns: it must fit a 1280-pixel window.

Who a row went to and who started it each take one column (the user and the
operator on a second, smaller line), and the error is clamped to a few
lines with the whole text in the cell's tooltip and on the entry's page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from mailops.models import MailLog, MailTrigger

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[MailLog]
else:
    _ModelAdminBase = object

_TRIGGER_LABELS = dict(MailTrigger.choices)
# Characters of the error shown in the list; the CSS clamps it to three lines.
ERROR_PREVIEW_LENGTH = 160


class MailLogColumnsMixin(_ModelAdminBase):
    """The list columns of :class:`~mailops.admin.maillog.MailLogAdmin` that combine fields."""

    @admin.display(description=_("recipient"))
    def recipient_and_user(self, log: MailLog) -> str:
        if log.user_id is None:
            return log.recipient or "-"
        return format_html(
            '{}<span class="mailops-who">{}</span>', log.recipient or "-", str(log.user)
        )

    @admin.display(description=_("trigger"))
    def trigger_and_who(self, log: MailLog) -> str:
        label = _TRIGGER_LABELS.get(log.trigger, log.trigger)
        # A Django user, or the OS user who ran a command.
        who = str(log.triggered_by) if log.triggered_by_id is not None else log.triggered_by_name
        if not who:
            return str(label)
        return format_html('{}<span class="mailops-who">{}</span>', label, who)

    @admin.display(description=_("error"))
    def short_error(self, log: MailLog) -> str:
        if not log.error:
            return ""
        flat = " ".join(log.error.split())
        return format_html(
            '<span class="mailops-short-error" title="{}">{}</span>',
            flat,
            Truncator(flat).chars(ERROR_PREVIEW_LENGTH),
        )
