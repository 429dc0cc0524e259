"""The mail log entry's page: its sections, and the other rows of its batch.

The page is read-only evidence for an auditor. It leaves out what says
nothing about the entry: the delivery engine's bookkeeping (the claim token),
"next attempt" unless the entry waits for a retry, "in doubt" unless it is,
and the seven Arrival fields until the mailbox was read back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mailops import stats
from mailops.admin.arrival import (
    ARRIVAL_FIELDS,
    NOT_VERIFIED_FIELD,
    arrival_latency,
    arrival_not_verified,
    was_verified,
)
from mailops.admin.links import changelist_url
from mailops.models import MailLog, MailStatus

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[MailLog]
else:
    _ModelAdminBase = object

# Rows of the same batch listed on an entry's page.
BATCH_ROWS_SHOWN = 50

# The entry page's sections.
MESSAGE_FIELDS = (
    "status_badge",
    "recipient",
    "user",
    "from_email",
    "subject",
    "body",
    "message_id",
    "esp_message_id",
)
DELIVERY_FIELDS = (
    "mailer",
    "backend",
    "attempts",
    "sent_at",
    "next_attempt",
    "smtp_code",
    "in_doubt_note",
    "full_error",
)
AUDIT_FIELDS = (
    "trigger",
    "triggered_by",
    "triggered_by_name",
    "batch_link",
    "created_at",
    "updated_at",
)


def next_attempt_text(log: MailLog) -> str:
    """When a queued row is tried again: "in 4 minutes (7 Dec. 2026, 01:35)" or "due now"."""
    when = log.next_attempt_at
    if when is None:
        return "-"
    if when <= timezone.now():
        return gettext("due now")
    return gettext("in %(delay)s (%(when)s)") % {
        "delay": timeuntil(when),
        "when": formats.localize(timezone.localtime(when)),
    }


class MailLogEntryMixin(_ModelAdminBase):
    """The entry page of :class:`~mailops.admin.maillog.MailLogAdmin`."""

    fieldsets = (
        (_("Message"), {"fields": MESSAGE_FIELDS}),
        (_("Delivery"), {"fields": DELIVERY_FIELDS}),
        (_("Audit"), {"fields": AUDIT_FIELDS}),
        (_("Arrival"), {"fields": ARRIVAL_FIELDS}),
    )
    # The entry page is read-only: every field it may show.
    readonly_fields = (
        MESSAGE_FIELDS + DELIVERY_FIELDS + AUDIT_FIELDS + ARRIVAL_FIELDS + (NOT_VERIFIED_FIELD,)
    )
    arrival_latency = arrival_latency
    arrival_not_verified = arrival_not_verified

    @admin.display(description=_("error"))
    def full_error(self, log: MailLog) -> str:
        if not log.error:
            return "-"
        return format_html('<pre class="mailops-error">{}</pre>', log.error)

    @admin.display(description=_("batch"))
    def batch_link(self, log: MailLog) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            changelist_url(self.admin_site, batch_id=log.batch_id),
            log.batch_id,
        )

    @admin.display(description=_("next attempt"))
    def next_attempt(self, log: MailLog) -> str:
        """When a queued row is tried again, in words ("in 4 minutes")."""
        return next_attempt_text(log)

    @admin.display(description=_("in doubt"))
    def in_doubt_note(self, log: MailLog) -> str:
        if not log.in_doubt:
            return gettext("no")
        return gettext(
            "yes: the whole message went out but no reply came back, so it may have "
            "been delivered; it is not retried automatically"
        )

    def get_fieldsets(self, request: HttpRequest, obj: MailLog | None = None) -> Any:
        """The entry's sections, without the lines that say nothing about it.

        "next attempt" only while the row waits for a retry, "in doubt" only
        when it is, the OS user's name only for rows a command sent, and the
        Arrival section as one "not verified" line until the mailbox was read
        back (its seven fields are empty until then).
        """
        if obj is None:
            return super().get_fieldsets(request, obj)
        hidden = set()
        if not obj.triggered_by_name:
            hidden.add("triggered_by_name")
        if obj.status != MailStatus.QUEUED or obj.next_attempt_at is None:
            hidden.add("next_attempt")
        if not obj.in_doubt:
            hidden.add("in_doubt_note")
        arrival = ARRIVAL_FIELDS if was_verified(obj) else (NOT_VERIFIED_FIELD,)
        return (
            (_("Message"), {"fields": MESSAGE_FIELDS}),
            (_("Delivery"), {"fields": [f for f in DELIVERY_FIELDS if f not in hidden]}),
            (_("Audit"), {"fields": [f for f in AUDIT_FIELDS if f not in hidden]}),
            (_("Arrival"), {"fields": arrival}),
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: MailLog | None = None,
    ) -> Any:
        if obj is not None:
            siblings = MailLog.objects.for_batch(obj.batch_id)
            context.update(
                batch_summary=stats.summarize(siblings),
                batch_rows=list(
                    siblings.exclude(pk=obj.pk)
                    .select_related("user")
                    .order_by("pk")[:BATCH_ROWS_SHOWN]
                ),
                batch_rows_shown=BATCH_ROWS_SHOWN,
                batch_url=changelist_url(self.admin_site, batch_id=obj.batch_id),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)
