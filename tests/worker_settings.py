"""Settings for worker processes that tests start (``manage.py`` in a subprocess).

They share the test database and the test's loopback SMTP server, both
passed in the environment by the test that starts them.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, MAILOPS

DATABASES["default"]["NAME"] = os.environ["MAILOPS_TEST_DB_NAME"]
MAILERS = json.loads(os.environ["MAILOPS_TEST_MAILERS"])
MAILOPS = {**MAILOPS, **json.loads(os.environ.get("MAILOPS_TEST_MAILOPS", "{}"))}
TASKS = json.loads(os.environ.get("MAILOPS_TEST_TASKS", "null")) or {
    "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
}

# What each worker wrote of a large selection, on its stderr for the test to read.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "mailops": {"level": "INFO"},
        "mailops.pending_batches": {"level": "INFO", "handlers": ["stderr"]},
        "django.tasks": {"level": "WARNING"},
    },
}
