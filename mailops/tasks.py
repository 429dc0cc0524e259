"""Delivery as a django.tasks task, so a worker can take it over by settings alone.

``MAILOPS["TASK_BACKEND"]`` names the ``TASKS`` alias. With Django's default
``ImmediateBackend`` the task runs inside ``enqueue()``, in the caller's
process; with a queue backend (django-tasks-db, Celery) it runs in a worker.
The service asks :func:`runs_elsewhere` before promising a caller that a
large batch will not block it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db.models import Min
from django.tasks import TaskResult, task, task_backends
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.backends.immediate import ImmediateBackend
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog
from mailops.sending.delivery import deliver_batch


def task_backend() -> BaseTaskBackend:
    return task_backends[get_setting("TASK_BACKEND")]


def runs_elsewhere() -> bool:
    """Whether an enqueued delivery runs outside the caller (a worker), not inside enqueue()."""
    return not isinstance(task_backend(), ImmediateBackend)


def can_defer() -> bool:
    """Whether a delivery can be scheduled for later (needed for retries and quotas)."""
    backend = task_backend()
    return runs_elsewhere() and backend.supports_defer


@task
def deliver_batch_task(batch_id: str) -> dict[str, int]:
    """Deliver the due queued rows of one batch; returns counts by status.

    Rows left waiting (a retry's backoff, a daily quota) get a follow-up
    task scheduled for when the first of them is due. A watch task is
    scheduled first, for after the sending lease: if this worker dies
    mid-batch, that task (on any worker) settles the rows it left and sends
    the rest, without an operator.
    """
    schedule_watch(batch_id)
    report = deliver_batch(
        batch_id,
        chunk_size=get_setting("DELIVERY_CHUNK_SIZE"),
        retry=can_defer(),
        rate_share=get_setting("DELIVERY_CONCURRENCY"),
    )
    schedule_follow_up(batch_id)
    return report.counts


def schedule_watch(batch_id: str | uuid.UUID) -> None:
    """A delivery task for after the lease, while the batch has unfinished rows.

    It finds nothing to do when this run finishes; the chain ends with the batch.
    """
    if not can_defer() or not MailLog.objects.for_batch(batch_id).unfinished().exists():
        return
    lease = timedelta(seconds=get_setting("SENDING_LEASE") + 1)
    enqueue_delivery(batch_id, run_after=timezone.now() + lease)


def enqueue_delivery(
    batch_id: str | uuid.UUID, *, run_after: datetime | None = None, copies: int = 1
) -> list[TaskResult]:
    """Enqueue ``copies`` delivery tasks for a batch (they share its rows safely)."""
    task_ = deliver_batch_task.using(backend=get_setting("TASK_BACKEND"))
    if run_after is not None:
        task_ = task_.using(run_after=run_after)
    return [task_.enqueue(batch_id=str(batch_id)) for _ in range(max(1, copies))]


def schedule_follow_up(batch_id: str | uuid.UUID) -> datetime | None:
    """If rows of the batch wait for a later attempt, enqueue a task for then.

    Returns when it will run, or ``None`` if nothing waits or no worker can
    run deferred tasks (then ``manage.py mailops_deliver`` picks them up).
    """
    if not can_defer():
        return None
    waiting = MailLog.objects.for_batch(batch_id).queued()
    first = waiting.aggregate(first=Min("next_attempt_at"))["first"]
    if first is None:
        return None
    run_after = max(first, timezone.now())
    enqueue_delivery(batch_id, run_after=run_after)
    return run_after


@task
def purge_mail_log_task() -> dict[str, object]:
    """One purge as ``MAILOPS["RETENTION"]`` and ``["BODY_RETENTION"]`` say (schedule it daily).

    Returns :meth:`~mailops.retention.purge.PurgeReport.as_dict` (what
    ``purgemaillog --json`` prints).
    """
    from mailops.retention.purge import purge_by_policy

    return purge_by_policy().as_dict()
