"""What ``sendtestmail`` ends with: its ``--json`` result (a documented shape), its exit status.

Split from the command to keep it readable; the command only prints them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError
from django.utils.translation import ngettext

from mailops.services import SendSummary

EXIT_FAILED = 1
EXIT_USAGE = 2


def summary_as_json(summary: SendSummary) -> dict[str, Any]:
    """What ``sendtestmail --json`` prints: the batch, its counts, one entry per message."""
    messages: list[dict[str, Any]]
    if summary.dry_run:
        messages = [
            {"recipient": r.address, "user_id": r.user_id, "status": "would_send"}
            for r in summary.planned
        ] + [
            {"recipient": r.address, "user_id": r.user_id, "status": "rejected", "error": r.error}
            for r in summary.invalid
        ]
    else:
        messages = [
            {
                "recipient": log.recipient,
                "user_id": log.user_id,
                "status": log.status,
                "error": log.error,
                "smtp_code": log.smtp_code,
                "message_id": log.message_id,
                "esp_message_id": log.esp_message_id,
                "log_id": log.pk,
            }
            for log in summary.logs()
        ]
    return {
        "mailer": summary.mailer,
        "batch_id": str(summary.batch_id) if summary.batch_id else None,
        "worker_error": summary.worker_error,
        "dry_run": summary.dry_run,
        "ok": summary.ok,
        "counts": {
            "sent": summary.sent,
            "failed": summary.failed,
            "rejected": summary.rejected,
            "suppressed": summary.suppressed,
            "queued": summary.queued,
        },
        "messages": messages,
    }


def summary_error(summary: SendSummary) -> CommandError | None:
    """The ``CommandError`` ``sendtestmail`` ends with for ``summary`` (``None``: exit 0)."""
    if any(not recipient.suppressed for recipient in summary.invalid):
        return CommandError(
            ngettext(
                "%(count)d recipient rejected; nothing was sent. "
                "Fix the entries above and run again.",
                "%(count)d recipients rejected; nothing was sent. "
                "Fix the entries above and run again.",
                summary.rejected,
            )
            % {"count": summary.rejected},
            returncode=EXIT_USAGE,
        )
    if summary.failed:
        return CommandError(
            ngettext(
                "%(count)d message failed; the reason is in the mail log (batch %(batch)s).",
                "%(count)d messages failed; the reasons are in the mail log (batch %(batch)s).",
                summary.failed,
            )
            % {"count": summary.failed, "batch": summary.batch_id},
            returncode=EXIT_FAILED,
        )
    if summary.worker_error:
        return CommandError(summary.worker_notice, returncode=EXIT_FAILED)
    if summary.suppressed:
        # The others went out; these did not, on purpose: say how to override.
        return CommandError(
            ngettext(
                "%(count)d recipient is on the suppression list and was not sent to "
                "(the reason is above); --ignore-suppression sends anyway.",
                "%(count)d recipients are on the suppression list and were not sent to "
                "(the reasons are above); --ignore-suppression sends anyway.",
                summary.suppressed,
            )
            % {"count": summary.suppressed},
            returncode=EXIT_FAILED,
        )
    return None
