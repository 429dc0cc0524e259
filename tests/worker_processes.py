"""Worker processes (``manage.py`` subprocesses) sharing the test database and SMTP server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.scale_fixtures import SMTP_BACKEND

ROOT = Path(__file__).resolve().parent.parent

# Worker processes need a database they share with the test: PostgreSQL.
# tests/conftest.py leaves these out of a SQLite run (scripts/test runs both).
shared_database = pytest.mark.postgres


def worker_env(
    server: Any, *, mailops: dict[str, Any] | None = None, tasks: dict[str, Any] | None = None
) -> dict[str, str]:
    """Environment for a worker process using this test's database and SMTP server."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "MAILOPS_TEST_DB_NAME": connection.settings_dict["NAME"],
        "MAILOPS_TEST_MAILERS": json.dumps(
            {"default": {"BACKEND": SMTP_BACKEND, "OPTIONS": server.options()}}
        ),
        "MAILOPS_TEST_MAILOPS": json.dumps(mailops or {}),
        "MAILOPS_TEST_TASKS": json.dumps(tasks),
    }
