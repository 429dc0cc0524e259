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
