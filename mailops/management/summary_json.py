"""The machine-readable result of ``sendtestmail --json`` (its shape is documented).

Split from the command to keep it readable; the command only prints it.
"""

from __future__ import annotations

from typing import Any

from mailops.services import SendSummary


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
            "queued": summary.queued,
        },
        "messages": messages,
    }
