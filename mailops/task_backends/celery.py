"""A django.tasks backend on Celery's public API: ``app.send_task`` and ``@app.task``.

Every Django task travels as one Celery task, ``mailops.run_django_task``,
carrying the task's import path and its JSON arguments; the worker imports
the Django task and calls it. Nothing of Celery's private registry API is
used, so Celery upgrades cannot break task discovery. Results stay in
Celery (``supports_get_result`` is False): mailops reads outcomes from the
mail log, not from task results.

Settings::

    TASKS = {"default": {
        "BACKEND": "mailops.task_backends.celery.CeleryBackend",
        "OPTIONS": {"CELERY_APP": "mailops.task_backends.celery_app.app"},  # the default
    }}
    CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"

Worker: ``celery -A mailops.task_backends.celery_app worker``.
"""

from __future__ import annotations

from typing import Any

from django.tasks import TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import DEFAULT_TASK_QUEUE_NAME, Task
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string

RUN_TASK = "mailops.run_django_task"
DEFAULT_APP = "mailops.task_backends.celery_app.app"


class CeleryBackend(BaseTaskBackend):
    supports_defer = True
    supports_priority = False
    supports_get_result = False

    def celery_app(self) -> Any:
        return import_string(self.options.get("CELERY_APP", DEFAULT_APP))

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)
        options: dict[str, Any] = {}
        # Django's "default" queue means "whatever the Celery app routes to".
        queue = self.options.get("QUEUE")
        if task.queue_name != DEFAULT_TASK_QUEUE_NAME:
            queue = task.queue_name
        if queue:
            options["queue"] = queue
        if task.run_after is not None:
            options["eta"] = task.run_after
        sent = self.celery_app().send_task(
            RUN_TASK, args=[task.module_path, list(args), dict(kwargs)], **options
        )
        result: TaskResult[Any, Any] = TaskResult(
            task=task,
            id=sent.id,
            status=TaskResultStatus.READY,
            enqueued_at=timezone.now(),
            started_at=None,
            last_attempted_at=None,
            finished_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result
