"""Queued delivery through Celery: the real Redis on loopback, a real worker process."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.scale_fixtures import use_server
from tests.worker_processes import shared_database, start_celery_worker, worker_env

ROOT = Path(__file__).resolve().parent.parent
BROKER = "redis://127.0.0.1:6379/15"


def redis_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(BROKER, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def celery_queue(use_tasks: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the task backend at Celery on a queue of this test alone."""
    if not redis_answers():
        pytest.fail(f"Redis is not answering at {BROKER}; the Celery path needs it")
    queue = f"mailops-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER)
    from mailops.task_backends.celery_app import app

    monkeypatch.setattr(app.conf, "broker_url", BROKER)
    use_tasks(
        {
            "default": {
                "BACKEND": "mailops.task_backends.celery.CeleryBackend",
                "OPTIONS": {"QUEUE": queue},
            }
        }
    )
    return queue


@shared_database
@pytest.mark.django_db(transaction=True)
def test_celery_worker_delivers_a_queued_batch(settings, celery_queue, plain_smtp) -> None:
    use_server(settings, plain_smtp)
    env = worker_env(plain_smtp, tasks=settings.TASKS)
    env["CELERY_BROKER_URL"] = BROKER
    worker = start_celery_worker(env, celery_queue)
    try:
        summary = send_test_mail(
            from_addresses(["a@example.com", "b@example.com", "c@example.com"]),
            trigger=MailTrigger.COMMAND,
            queue=True,
        )
        assert summary.handed_to_worker
        assert summary.queued == 3

        plain_smtp.wait_for_messages(3, timeout=120)
        deadline = time.monotonic() + 60
        while summary.logs().sent().count() < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert set(summary.logs().values_list("status", flat=True)) == {MailStatus.SENT}
    finally:
        worker.kill()
        output = worker.communicate(timeout=10)[0]
    assert "Traceback" not in output, output
