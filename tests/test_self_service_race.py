"""Twelve "send me a test mail" requests at once by one user: the limit holds, refusals are logged.

Real threads, each with its own database connection, on PostgreSQL (the
lock is the database's: ``SELECT ... FOR UPDATE`` on the user's row).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connections
from django.test import Client

from mailops.models import MailLog

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 12
LIMIT = 5


def test_concurrent_requests_send_exactly_the_limit_and_log_every_refusal(settings) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SELF_SERVICE_LIMIT": LIMIT}
    user: Any = get_user_model().objects.create_user("racer", "racer@example.com", "pw")
    # A thread that fails before the barrier breaks it for the others (no hang).
    start = threading.Barrier(REQUESTS, timeout=30)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def press() -> None:
        try:
            client = Client()
            client.force_login(user)
            start.wait()
            statuses.append(client.post("/mail/").status_code)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press, daemon=True) for _ in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert statuses == [302] * REQUESTS
    assert len(mail.outbox) == LIMIT
    rows = MailLog.objects.filter(triggered_by=user)
    assert rows.status_counts() == {"sent": LIMIT, "rejected": REQUESTS - LIMIT}
    refusals = rows.filter(status="rejected")
    assert {row.error.split(":")[0] for row in refusals} == {"self-service limit reached"}
    assert {row.trigger for row in rows} == {"self_service"}
