"""Queued delivery through django-tasks-db: real ``db_worker`` processes on a real database.

Every step is a ``manage.py`` process, as an operator would run it with
``TASKS_BACKEND=database``: ``migrate``, ``sendtestmail --async --wait``
(queues the batch, then follows it) and two ``db_worker`` processes that
share the queue. They use a database of
their own, a SQLite file or a scratch PostgreSQL database (not the test
process's: SQLite's test database lives in this process's memory, and the
worker's task tables are not part of the test settings). The loopback SMTP
server counts what actually arrived. Sending each once runs on both send
paths (``backend``); writing a selection's rows comes before either.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.worker_processes import ROOT, mailers, manage

MESSAGES = 120
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# Worker processes per database, each batch split into as many delivery tasks.
WORKERS = {"sqlite": 2, "postgres": 2}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite-file"),
        pytest.param("postgres", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, plain_smtp: Any
) -> tuple[dict[str, str], int]:
    """``manage.py`` environment (database tasks, own DB, the test's SMTP server) and workers."""
    database = request.getfixturevalue(f"{request.param}_database")
    workers = WORKERS[request.param]
    mailops = {"DELIVERY_CONCURRENCY": workers, "DELIVERY_CHUNK_SIZE": 10}
    env = {
        name: value
        for name, value in os.environ.items()
        # This run's own choices must not leak into the processes.
        if name not in {"DATABASE_URL", "TASKS_BACKEND", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith(("MAILER_", "GMAIL_", "MAILOPS_TEST_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            # What the workers how-to says to set: adds django_tasks_db to INSTALLED_APPS.
            "TASKS_BACKEND": "database",
            "MAILOPS_VAR_DIR": str(tmp_path / "var"),
            "MAILOPS_TEST_TASKS": json.dumps(DATABASE_TASKS),
            "MAILOPS_TEST_MAILERS": mailers(plain_smtp),
            "MAILOPS_TEST_MAILOPS": json.dumps(mailops),
            **database,
        }
    )
    return env, workers


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def dump(env: dict[str, str], *models: str) -> dict[str, list[dict[str, Any]]]:
    """``{model: [fields]}`` as ``manage.py dumpdata`` reads them from the processes' database."""
    result = manage(env, "dumpdata", *models, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows: dict[str, list[dict[str, Any]]] = {model.lower(): [] for model in models}
    for row in json.loads(result.stdout):
        rows[row["model"]].append(row["fields"])
    return rows


def test_db_workers_send_every_queued_message_exactly_once(site, plain_smtp, backend) -> None:
    site_env, worker_count = site
    site_env = {**site_env, "MAILOPS_TEST_MAILERS": mailers(plain_smtp, backend=backend)}
    migrated = manage(site_env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    recipients = [f"user{i}@example.com" for i in range(MESSAGES)]

    sender = start(site_env, "sendtestmail", "--async", "--wait", *recipients)
    workers = [
        start(site_env, "db_worker", "--no-startup-delay", "--interval", "0.2", "--no-reload")
        for _ in range(worker_count)
    ]
    try:
        out, err = sender.communicate(timeout=90)
    finally:
        for worker in workers:
            # SIGTERM: the worker finishes its task (if any) and exits.
            worker.terminate()
        worker_outputs = [worker.communicate(timeout=30) for worker in workers]

    assert sender.returncode == 0, (out, err)
    assert f"{MESSAGES} messages will be queued and sent by the task worker" in out
    assert f"{MESSAGES} sent, 0 failed, 0 rejected via mailer 'default'" in out
    assert err.splitlines()[-1] == f"[{'#' * 20}] {MESSAGES}/{MESSAGES} sent {MESSAGES}, failed 0"
    for worker, (worker_out, worker_err) in zip(workers, worker_outputs, strict=True):
        assert worker.returncode == 0, worker_err
        assert "Traceback" not in worker_out + worker_err

    received = Counter(message.message_id for message in plain_smtp.messages)
    assert len(received) == MESSAGES
    assert set(received.values()) == {1}, "a message was delivered twice"
    tables = dump(site_env, "mailops.MailLog", "django_tasks_database.DBTaskResult")
    rows = tables["mailops.maillog"]
    assert sorted(row["recipient"] for row in rows) == sorted(recipients)
    assert {(row["status"], row["attempts"]) for row in rows} == {("sent", 1)}
    assert {row["message_id"] for row in rows} == set(received)
    tasks = tables["django_tasks_database.dbtaskresult"]
    # Each delivery task that found the batch unfinished also scheduled a
    # watch task for after the lease (it would settle and finish the batch had
    # the worker died). A task that started after the other had sent every row
    # schedules none: how many depends on when each worker took its task.
    statuses = Counter(task["status"] for task in tasks)
    assert set(statuses) == {"SUCCESSFUL", "READY"}, [task["traceback"] for task in tasks]
    assert statuses["SUCCESSFUL"] == worker_count
    assert 1 <= statuses["READY"] <= worker_count


SELECTION_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from mailops.models import MailTrigger
from mailops.services import send_test_mail_to_users
User = get_user_model()
User.objects.bulk_create(
    [User(username=f"u{i}", email=f"u{i}@example.com") for i in range(USERS)]
    + [User(username=f"nomail{i}") for i in range(2)]
)
summary = send_test_mail_to_users(User.objects.all(), trigger=MailTrigger.ADMIN_ACTION)
print(json.dumps({"queued": summary.queued, "rejected": summary.rejected}))
"""

WROTE = re.compile(r"wrote (\d+) queued rows of batch")

PROGRESS_SCRIPT = """
import json
from mailops.models import MailLog, PendingBatch
unfinished = MailLog.objects.filter(status__in=["queued", "sending"]).count()
print(json.dumps({"unfinished": unfinished + PendingBatch.objects.count()}))
"""


def test_db_workers_write_a_large_selection_and_send_each_once(site, plain_smtp) -> None:
    # Above WRITE_IN_REQUEST_LIMIT the workers write the rows: each delivery
    # task takes rows one at a time from the same batch, then sends what is due.
    site_env, worker_count = site
    users = 300
    env = dict(site_env)
    mailops = json.loads(env["MAILOPS_TEST_MAILOPS"])
    env["MAILOPS_TEST_MAILOPS"] = json.dumps(
        {**mailops, "ASYNC_THRESHOLD": 5, "WRITE_IN_REQUEST_LIMIT": 10, "WRITE_CHUNK_SIZE": 1}
    )
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    request = manage(env, "shell", "-c", SELECTION_SCRIPT.replace("USERS", str(users)))
    assert request.returncode == 0, request.stderr
    assert json.loads(request.stdout.splitlines()[-1]) == {"queued": users, "rejected": 2}

    workers = [
        start(env, "db_worker", "--no-startup-delay", "--interval", "0.2", "--no-reload")
        for _ in range(worker_count)
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            progress = manage(env, "shell", "-c", PROGRESS_SCRIPT)
            assert progress.returncode == 0, progress.stderr
            if json.loads(progress.stdout.splitlines()[-1])["unfinished"] == 0:
                break
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.terminate()
        worker_outputs = [worker.communicate(timeout=30) for worker in workers]
    for worker, (worker_out, worker_err) in zip(workers, worker_outputs, strict=True):
        assert worker.returncode == 0, worker_err
        assert "Traceback" not in worker_out + worker_err

    received = Counter(message.rcpt_tos[0] for message in plain_smtp.messages)
    assert set(received.values()) == {1}, "a message was delivered twice"
    assert sorted(received) == sorted(f"u{i}@example.com" for i in range(users))
    # Each worker logs what it wrote (nothing, if the batch was written when it came).
    written = [int(match) for _out, err in worker_outputs for match in WROTE.findall(err)]
    assert sum(written) == users, written
    rows = dump(env, "mailops.MailLog")["mailops.maillog"]
    assert Counter(row["status"] for row in rows) == {"sent": users, "rejected": 2}
    assert len({row["user"] for row in rows}) == users + 2, "a user got two rows"
