"""Reading the mailbox back as a django.tasks task, so a worker waits instead of a request."""

from __future__ import annotations

import uuid

from django.tasks import TaskResult, task
from django.utils.translation import gettext as _

from mailops.arrival.health import check_alerts
from mailops.arrival.mailboxes import mailbox_for
from mailops.arrival.verify import verify_arrival
from mailops.conf import get_setting, stored_language
from mailops.models import ArrivalStatus, MailLog


@task
def verify_batch_task(batch_id: str, timeout: float) -> dict[str, str]:
    """Poll the mailbox for every accepted message of a sent batch; ``{log id: arrival}``.

    The rows get their outcome (``arrival`` and friends) as each is found or
    given up on; a batch whose mailer has no mailbox (any more) changes nothing.
    """
    logs = [
        log
        for log in MailLog.objects.for_batch(batch_id).order_by("pk")
        if log.accepted and log.message_id
    ]
    try:
        mailbox = mailbox_for(logs[0].mailer) if logs else None
        if mailbox is None:
            return {}
        arrivals = verify_arrival(logs, mailbox=mailbox, timeout=timeout)
        # The canary's outcome may raise or clear the mailer's alert (ALERT_WEBHOOK).
        check_alerts(logs[0].mailer)
        return {str(arrival.log_id): arrival.arrival for arrival in arrivals}
    finally:
        # Whatever stopped this run, no row may say "being verified" for ever.
        with stored_language():
            reason = _("the verification stopped before it ended")
        MailLog.objects.for_batch(batch_id).filter(arrival=ArrivalStatus.PENDING).update(
            arrival=ArrivalStatus.ERROR, arrival_error=reason
        )


def enqueue_verification(batch_id: uuid.UUID | str, *, timeout: float) -> TaskResult:
    """Hand the verification of a sent batch to the task backend (``MAILOPS["TASK_BACKEND"]``)."""
    # The batch page follows the rows until the worker has read the mailbox.
    MailLog.objects.for_batch(batch_id).sent().exclude(message_id="").update(
        arrival=ArrivalStatus.PENDING
    )
    task_ = verify_batch_task.using(backend=get_setting("TASK_BACKEND"))
    return task_.enqueue(batch_id=str(batch_id), timeout=timeout)
