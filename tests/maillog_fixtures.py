"""Mail log rows and admin users for the audit page tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from mailops.models import MailLog, MailStatus, MailTrigger

CHANGELIST = "/admin/mailops/maillog/"


LOG_DEFAULTS: dict[str, Any] = {
    "status": MailStatus.SENT,
    "recipient": "someone@example.com",
    "mailer": "default",
    "backend": "django.core.mail.backends.locmem.EmailBackend",
    "from_email": "mailops-tests@example.com",
    "subject": "Test mail",
    "body": "Hello",
    "trigger": MailTrigger.ADMIN_ACTION,
    "attempts": 1,
}


def make_log(*, created_at: datetime | None = None, **fields: Any) -> MailLog:
    """One log row; ``created_at`` is set after insert (the field is auto_now_add)."""
    log = MailLog.objects.create(**{**LOG_DEFAULTS, **fields})
    if created_at is not None:
        MailLog.objects.filter(pk=log.pk).update(created_at=created_at)
        log.refresh_from_db()
    return log


def make_logs(count: int, **fields: Any) -> list[MailLog]:
    """``count`` rows with :func:`make_log`'s defaults, one ``bulk_create``; recipients numbered."""
    return MailLog.objects.bulk_create(
        MailLog(**{**LOG_DEFAULTS, "recipient": f"r{n}@example.com", **fields})
        for n in range(count)
    )


def make_batch(count: int, **fields: Any) -> list[MailLog]:
    batch_id = fields.pop("batch_id", uuid.uuid4())
    return [
        make_log(batch_id=batch_id, recipient=f"member{i}@example.com", **fields)
        for i in range(count)
    ]


def changelist_rows(response: Any) -> list[MailLog]:
    return list(response.context["cl"].result_list)


@pytest.fixture
def admin_client_for(
    make_user: Callable[..., Any],
) -> Callable[..., Client]:
    """``admin_client_for("name", perms=(...))``: a logged-in staff client."""

    def make(username: str, *, perms: tuple[str, ...] = (), superuser: bool = False) -> Client:
        user = make_user(
            username,
            f"{username}@example.com",
            perms=perms,
            is_staff=True,
            is_superuser=superuser,
        )
        client = Client()
        client.force_login(user)
        client.user = user  # type: ignore[attr-defined]
        return client

    return make


@pytest.fixture
def auditor(admin_client_for: Callable[..., Client]) -> Client:
    """Staff who may view and export the log, and resend from it."""
    return admin_client_for(
        "auditor",
        perms=("mailops.view_maillog", "mailops.export_maillog", "mailops.send_test_mail"),
    )


def purge(*args: str) -> dict[str, Any]:
    """``purgemaillog --json`` with ``args``: its report."""
    out = StringIO()
    call_command("purgemaillog", "--json", *args, stdout=out, stderr=StringIO())
    return json.loads(out.getvalue())


def mailops(**values: Any) -> Any:
    """``MAILOPS`` for a purge test: ``values``, and no pause between batches."""
    return override_settings(MAILOPS={"PURGE_PAUSE": 0, **values})
