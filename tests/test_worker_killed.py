"""A ``db_worker`` killed with SIGKILL mid-batch: the next worker carries on by itself.

Every step is a ``manage.py`` process on a database of its own (a SQLite
file or a scratch PostgreSQL database), as an operator would run it with
``TASKS_BACKEND=database``. The SMTP server is slow (each message takes a
moment before its reply), so the kill lands mid-batch. Nobody runs
``mailops_deliver --recover``: the delivery task scheduled a watch task for
after the lease, which the restarted worker runs. The server counts what it
stored per recipient: every recipient exactly once, except at most the one
message that was on the wire (one connection), which is logged in doubt.
Each runs on both send paths (``every_send_path``): the worker's settings
name the backend.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.backends import every_send_path
from tests.faulty_smtp import FaultySMTPServer, wait_for
from tests.worker_processes import ROOT, mailers, manage, start_celery_worker

RECIPIENTS = [f"user{i}@example.com" for i in range(20)]
LEASE = 3

UNFINISHED = """
import json
from mailops.models import MailLog
print(json.dumps(MailLog.objects.filter(status__in=["queued", "sending"]).count()))
"""


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite-file"),
        pytest.param("postgres", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, faulty_smtp: FaultySMTPServer, backend: str
) -> Any:
    database = request.getfixturevalue(f"{request.param}_database")
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "TASKS_BACKEND", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith(("MAILER_", "GMAIL_", "MAILOPS_TEST_"))
    }
    mailops = {"DELIVERY_CONCURRENCY": 1, "DELIVERY_CHUNK_SIZE": 5, "SENDING_LEASE": LEASE}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "TASKS_BACKEND": "database",
            "MAILOPS_VAR_DIR": str(tmp_path / "var"),
            "MAILOPS_TEST_TASKS": json.dumps(
                {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
            ),
            "MAILOPS_TEST_MAILERS": mailers(faulty_smtp, backend=backend, timeout=5),
            "MAILOPS_TEST_MAILOPS": json.dumps(mailops),
            **database,
        }
    )
    return env


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", "db_worker", "--no-startup-delay", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def unfinished(env: dict[str, str]) -> int:
    result = manage(env, "shell", "-c", UNFINISHED)
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout.splitlines()[-1]))


@every_send_path
def test_a_killed_db_worker_costs_at_most_the_message_on_the_wire(site, faulty_smtp) -> None:
    migrated = manage(site, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    queued = manage(site, "sendtestmail", "--async", *RECIPIENTS)
    assert queued.returncode == 0, queued.stderr
    faulty_smtp.delay = 0.3

    first = start_worker(site)
    try:
        wait_for(lambda: sum(faulty_smtp.deliveries.values()) >= 5)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    faulty_smtp.delay = 0.0
    delivered_before_restart = sum(faulty_smtp.deliveries.values())
    assert delivered_before_restart < len(RECIPIENTS)

    second = start_worker(site)
    try:
        # The watch task runs once the lease is over, on this worker.
        wait_for(lambda: unfinished(site) == 0, timeout=60)
    finally:
        second.terminate()
        out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert "Traceback" not in out + err

    rows = json.loads(manage(site, "dumpdata", "mailops.MailLog", "--format", "json").stdout)
    fields = {row["fields"]["recipient"]: row["fields"] for row in rows}
    doubt = {address for address, row in fields.items() if row["status"] != "sent"}
    assert len(doubt) <= 1, doubt
    for address in doubt:
        assert (fields[address]["status"], fields[address]["in_doubt"]) == ("failed", True)
        assert "in doubt" in fields[address]["error"]
    assert max(faulty_smtp.deliveries.values()) == 1, "a message was delivered twice"
    assert set(faulty_smtp.deliveries) | doubt == set(RECIPIENTS)
    # The never-attempted rows got their attempt back: one each.
    assert Counter(row["attempts"] for row in fields.values()) == {1: len(RECIPIENTS)}


# --- the same with a Celery worker (TASKS_BACKEND=celery, Redis on loopback) -----------

CELERY_BROKER = "redis://127.0.0.1:6379/15"


@every_send_path
def test_a_killed_celery_worker_costs_at_most_the_message_on_the_wire(site, faulty_smtp) -> None:
    queue = f"mailops-killed-{uuid.uuid4().hex}"
    env = {
        **site,
        "CELERY_BROKER_URL": CELERY_BROKER,
        "MAILOPS_TEST_TASKS": json.dumps(
            {
                "default": {
                    "BACKEND": "mailops.task_backends.celery.CeleryBackend",
                    "OPTIONS": {"QUEUE": queue},
                }
            }
        ),
    }
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    queued = manage(env, "sendtestmail", "--async", *RECIPIENTS)
    assert queued.returncode == 0, queued.stderr
    faulty_smtp.delay = 0.3

    first = start_celery_worker(env, queue)
    try:
        wait_for(lambda: sum(faulty_smtp.deliveries.values()) >= 5, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    faulty_smtp.delay = 0.0
    assert sum(faulty_smtp.deliveries.values()) < len(RECIPIENTS)

    # A new worker resumes the batch on start and recovers the dead one's rows
    # once the lease is over: nobody runs mailops_deliver.
    second = start_celery_worker(env, queue)
    try:
        wait_for(lambda: unfinished(env) == 0, timeout=60)
    finally:
        second.terminate()
        output = second.communicate(timeout=30)[0]
    assert "Traceback" not in output, output

    rows = json.loads(manage(env, "dumpdata", "mailops.MailLog", "--format", "json").stdout)
    fields = {row["fields"]["recipient"]: row["fields"] for row in rows}
    doubt = {address for address, row in fields.items() if row["status"] != "sent"}
    assert len(doubt) <= 1, doubt
    for address in doubt:
        assert (fields[address]["status"], fields[address]["in_doubt"]) == ("failed", True)
    assert max(faulty_smtp.deliveries.values()) == 1, "a message was delivered twice"
    assert set(faulty_smtp.deliveries) | doubt == set(RECIPIENTS)
