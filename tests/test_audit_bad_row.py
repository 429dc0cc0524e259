"""One bad site mail costs no other mail its audit row.

A subject with a NUL byte (PostgreSQL cannot store it) used to fail the
background writer's multi-row insert and drop every row of its group with one
ERROR line. Now such characters are replaced (and the row says so), and a row
that still cannot be written is reported alone while the others of its group
are written, by the background writer and inline alike.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.core.mail import EmailMessage, mailers
from django.utils import timezone

from mailops.audit import writer
from mailops.audit.rows import insert_site_rows, log_unwritten, write_site_rows
from mailops.audit.writer import RowWriter
from mailops.models import MailLog, MailStatus, MailTrigger
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db(transaction=True)

SMTP = "django.core.mail.backends.smtp.EmailBackend"
# An integer no database column here holds: the row fails on its own.
OUT_OF_RANGE = 10**20


@pytest.fixture
def audited(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True, "AUDIT_WRITE": "background"}
    yield smtp_server
    assert writer.flush(10)


def site_row(recipient: str, **fields: Any) -> dict[str, Any]:
    now = timezone.now()
    return {
        "status": MailStatus.SENT,
        "recipient": recipient,
        "error": "",
        "smtp_code": None,
        "esp_message_id": "",
        "sent_at": now,
        "mailer": "default",
        "backend": SMTP,
        "from_email": "site@example.com",
        "subject": "Hello",
        "body": "",
        "message_id": f"<{uuid.uuid4()}@example.com>",
        "trigger": MailTrigger.SITE,
        "batch_id": uuid.uuid4(),
        "attempts": 1,
        "created_at": now,
        "updated_at": now,
        **fields,
    }


def test_a_nul_byte_in_one_subject_loses_no_row_of_its_group(
    audited: LoopbackSMTPServer,
) -> None:
    messages = [
        EmailMessage(
            "Reset\x00code" if n == 20 else f"Hello {n}", "Body", None, [f"u{n}@example.com"]
        )
        for n in range(41)
    ]

    # One send_messages call: one group of rows for the writer.
    assert mailers["default"].send_messages(messages) == 41

    assert len(audited.wait_for_messages(41)) == 41
    assert writer.flush(10)
    rows = MailLog.objects.filter(trigger=MailTrigger.SITE)
    assert rows.count() == 41
    bad = rows.get(recipient="u20@example.com")
    assert bad.subject == "Reset\ufffdcode"
    assert bad.status == MailStatus.SENT
    assert "replaced by U+FFFD in subject" in bad.error


def test_the_background_writer_writes_the_good_rows_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row_writer = RowWriter(insert_site_rows, on_error=log_unwritten)
    rows = [
        site_row("good1@example.com"),
        site_row("bad@example.com", status=MailStatus.FAILED, smtp_code=OUT_OF_RANGE),
        site_row("good2@example.com"),
    ]

    with caplog.at_level(logging.ERROR, logger="mailops.audit"):
        row_writer.submit(rows)
        assert row_writer.flush(10)

    written = sorted(MailLog.objects.values_list("recipient", flat=True))
    assert written == ["good1@example.com", "good2@example.com"]
    (report,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "bad@example.com" in report.getMessage()
    assert rows[1]["message_id"] in report.getMessage()


def test_an_inline_write_keeps_the_good_rows_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [
        site_row("good1@example.com"),
        site_row("bad@example.com", status=MailStatus.FAILED, smtp_code=OUT_OF_RANGE),
        site_row("good2@example.com", subject="Nul\x00here"),
    ]

    with caplog.at_level(logging.ERROR, logger="mailops.audit"):
        assert write_site_rows(rows) == 2

    written = dict(MailLog.objects.values_list("recipient", "subject"))
    assert written == {"good1@example.com": "Hello", "good2@example.com": "Nul\ufffdhere"}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "bad@example.com" in errors[0]
