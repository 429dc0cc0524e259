"""Worker processes (``manage.py`` subprocesses) sharing the test database and SMTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.scale_fixtures import SMTP_BACKEND

ROOT = Path(__file__).resolve().parent.parent


def manage(
    env: Mapping[str, str] | None, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python manage.py *args`` in the project root, as a user runs it; output captured.

    ``env`` is the process's whole environment (``None``: this one's).
    """
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Worker processes need a database they share with the test: PostgreSQL.
# tests/conftest.py leaves these out of a SQLite run (scripts/test runs both).
shared_database = pytest.mark.postgres


def mailers(server: Any, *, backend: str = SMTP_BACKEND, **options: Any) -> str:
    """``MAILOPS_TEST_MAILERS``: the ``default`` mailer, ``backend`` on the test's SMTP server.

    A worker process reads its ``MAILERS`` from it (tests/worker_settings.py):
    that is how a test's send path (tests/backends.py) reaches the process.
    """
    return json.dumps({"default": {"BACKEND": backend, "OPTIONS": server.options(**options)}})


def worker_env(
    server: Any,
    *,
    backend: str = SMTP_BACKEND,
    mailops: dict[str, Any] | None = None,
    tasks: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Environment for a worker process using this test's database and SMTP server."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "MAILOPS_TEST_DB_NAME": connection.settings_dict["NAME"],
        "MAILOPS_TEST_MAILERS": mailers(server, backend=backend),
        "MAILOPS_TEST_MAILOPS": json.dumps(mailops or {}),
        "MAILOPS_TEST_TASKS": json.dumps(tasks),
    }


# --- a database of their own for manage.py processes (a SQLite file or a scratch
# PostgreSQL database), used through the parametrised "site" fixtures of the tests.


@pytest.fixture
def sqlite_database(tmp_path: Path) -> dict[str, str]:
    """A SQLite file for the processes (``DATABASE_URL`` unset: the settings' default engine)."""
    return {"MAILOPS_TEST_DB_NAME": str(tmp_path / "mailops.sqlite3")}


@pytest.fixture
def postgres_database() -> Iterator[dict[str, str]]:
    """A scratch database on the server the test run uses, dropped afterwards."""
    import psycopg

    params = connection.settings_dict
    server = {
        "host": params["HOST"] or "127.0.0.1",
        "port": str(params["PORT"] or 5432),
        "user": params["USER"] or "postgres",
        "password": params["PASSWORD"] or None,
    }
    name = f"mailops_workers_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"DATABASE_URL": os.environ["DATABASE_URL"], "MAILOPS_TEST_DB_NAME": name}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_celery_worker(env: dict[str, str], queue: str) -> subprocess.Popen[str]:
    """A real Celery worker (one process, ``solo`` pool) on ``queue``; output in one pipe."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mailops.task_backends.celery_app",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
