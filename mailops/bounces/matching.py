"""Which ``MailLog`` row a report is about: the original's Message-ID, else recipient and time."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.translation import gettext, ngettext

from mailops.bounces.reports import RecipientOutcome
from mailops.models import ACCEPTED_STATUSES, BounceMatch, MailLog

CLOCK_SLACK = timedelta(minutes=5)


def find_log(
    outcome: RecipientOutcome,
    original_message_id: str,
    *,
    mailers: list[str],
    received_at: datetime,
    window: timedelta,
) -> tuple[MailLog | None, str, str]:
    """The row a report's recipient outcome is about: ``(row, how it matched, why not)``.

    First by the original's Message-ID (mailops sets one on every message)
    and the recipient; else, only for mail of ``mailers``, the newest row
    sent to the recipient within ``window`` before the report arrived, a
    weaker match (:attr:`BounceMatch.RECIPIENT_TIME`).
    """
    recipients = {a.lower() for a in (outcome.recipient, outcome.original_recipient) if a}
    if original_message_id:
        rows = list(MailLog.objects.filter(message_id=original_message_id).order_by("pk")[:20])
        same = [row for row in rows if row.recipient.lower() in recipients]
        if same:
            return same[0], BounceMatch.MESSAGE_ID, ""
        if len(rows) == 1:
            # One message, one row: the report may name the address after forwarding.
            return rows[0], BounceMatch.MESSAGE_ID, ""
        if rows:
            return (
                None,
                "",
                ngettext(
                    "its Message-ID is on %(count)d entry, not to this recipient",
                    "its Message-ID is on %(count)d entries, none to this recipient",
                    len(rows),
                )
                % {"count": len(rows)},
            )
    if not recipients:
        return None, "", gettext("it names no recipient and no Message-ID of an entry")
    candidates = (
        MailLog.objects.filter(
            mailer__in=mailers,
            status__in=ACCEPTED_STATUSES,
            sent_at__gte=received_at - window,
            # INTERNALDATE has whole seconds, and the mail server's clock is not ours.
            sent_at__lte=received_at + CLOCK_SLACK,
        )
        # A prefix lookup, which the recipient prefix index answers; then exact.
        .filter(recipient__istartswith=outcome.recipient or outcome.original_recipient)
        .order_by("-sent_at", "-pk")[:20]
    )
    for row in candidates:
        if row.recipient.lower() in recipients:
            return row, BounceMatch.RECIPIENT_TIME, ""
    return (
        None,
        "",
        gettext("no entry has its Message-ID, nor was sent to the recipient in the window"),
    )
