"""The Celery app that runs Django tasks for :class:`~mailops.task_backends.celery.CeleryBackend`.

Configured from Django settings named ``CELERY_*``, except the broker URL:
it may carry a password, so it comes from the ``CELERY_BROKER_URL``
environment variable and never sits in settings (where a DEBUG error page
would show it). Start a worker with ``DJANGO_SETTINGS_MODULE`` naming the
project's settings (mailops cannot guess them)::

    DJANGO_SETTINGS_MODULE=mysite.settings celery -A mailops.task_backends.celery_app worker
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
    # A worker started without it would load no settings (or, worse, another project's).
    raise ImproperlyConfigured(
        "Set DJANGO_SETTINGS_MODULE to your project's settings before starting the Celery "
        "worker, e.g. DJANGO_SETTINGS_MODULE=mysite.settings "
        "celery -A mailops.task_backends.celery_app worker"
    )

app = Celery("mailops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
# Outcomes live in the mail log; a result backend would only duplicate them.
app.conf.task_ignore_result = True


@app.task(name="mailops.run_django_task")
def run_django_task(module_path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Import the Django task at ``module_path`` and run it here, in the worker.

    Celery's Django fixup has already called ``django.setup()`` in the worker.
    """
    return import_string(module_path).call(*args, **kwargs)


@worker_ready.connect
def resume_unfinished_batches(**kwargs: Any) -> None:
    """A worker (re)started: hand every batch with rows still queued or sending to delivery.

    Celery with Redis keeps a task scheduled for later (the delivery's watch
    after the lease) reserved by the worker that fetched it; a worker killed
    outright takes it along until the broker's visibility timeout (an hour
    by default). So each worker, on start, delivers what is queued now and
    schedules a watch for after the lease, when the rows a dead worker left
    "sending" are recovered (:mod:`mailops.sending.recovery`).
    """
    from mailops.models import MailLog
    from mailops.tasks import enqueue_delivery, schedule_watch

    batches = MailLog.objects.unfinished().order_by().values_list("batch_id", flat=True).distinct()
    for batch_id in list(batches):
        enqueue_delivery(batch_id)
        schedule_watch(batch_id)
