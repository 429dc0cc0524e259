"""Site-mail rows written by the background writer (``MAILOPS["AUDIT_WRITE"] = "background"``).

The writer thread has its own database connection, so these tests commit
for real (``transactional_db``) and wait for it with ``flush()``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.core import mail
from django.db import DatabaseError, transaction

from mailops.audit import rows as audit_rows
from mailops.audit import writer
from mailops.audit.writer import RowWriter
from mailops.models import MailLog, MailTrigger
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db(transaction=True)

SMTP = "django.core.mail.backends.smtp.EmailBackend"


@pytest.fixture
def audited(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True, "AUDIT_WRITE": "background"}
    yield smtp_server
    assert writer.flush(10)


def test_site_mail_is_logged_by_the_writer_thread(audited: LoopbackSMTPServer) -> None:
    for n in range(5):
        assert mail.send_mail("Hello", "Body", None, [f"user{n}@example.com"]) == 1

    assert writer.flush(10)
    rows = MailLog.objects.filter(trigger=MailTrigger.SITE).order_by("recipient")
    assert [row.recipient for row in rows] == [f"user{n}@example.com" for n in range(5)]
    assert {row.status for row in rows} == {"sent"}
    assert len(audited.wait_for_messages(5)) == 5


def test_the_row_stays_when_the_senders_transaction_rolls_back(
    audited: LoopbackSMTPServer,
) -> None:
    class RolledBack(Exception):
        pass

    def view() -> None:
        with transaction.atomic():
            mail.send_mail("Reset", "Body", None, ["erin@example.com"])
            raise RolledBack

    with pytest.raises(RolledBack):
        view()

    # The mail went out; so its row must stay, whatever the view did next.
    audited.wait_for_messages(1)
    assert writer.flush(10)
    assert MailLog.objects.get(trigger=MailTrigger.SITE).recipient == "erin@example.com"


def test_rows_that_piled_up_are_written_in_one_insert(monkeypatch) -> None:
    gate, taken = threading.Event(), threading.Event()
    batches: list[int] = []

    def slow_write(rows: list[dict[str, Any]]) -> int:
        taken.set()
        gate.wait(10)
        batches.append(len(rows))
        return len(rows)

    row_writer = RowWriter(slow_write, on_error=lambda rows, error: None)
    row_writer.submit([{"n": 0}])
    assert taken.wait(10)  # the writer holds the first row and waits on the gate
    for n in range(1, 40):
        row_writer.submit([{"n": n}])
    assert row_writer.pending == 40
    gate.set()

    assert row_writer.flush(10)
    assert batches == [1, 39]
    assert row_writer.pending == 0


def test_a_failed_insert_is_logged_and_the_writer_carries_on(caplog, monkeypatch) -> None:
    written: list[int] = []

    def flaky(rows: list[dict[str, Any]]) -> int:
        if rows[0]["n"] == 0:
            raise DatabaseError("disk full")
        written.append(rows[0]["n"])
        return len(rows)

    row_writer = RowWriter(flaky, on_error=audit_rows.log_unwritten)
    with caplog.at_level(logging.ERROR, logger="mailops.audit"):
        row_writer.submit([{"n": 0}])
        assert row_writer.flush(10)
        row_writer.submit([{"n": 1}])
        assert row_writer.flush(10)

    assert written == [1]
    assert "1 log row(s) not written" in caplog.text


def test_a_database_error_in_the_writer_does_not_reach_the_sender(
    audited: LoopbackSMTPServer, monkeypatch, caplog
) -> None:
    def broken_insert(rows: list[dict[str, Any]], *, using: str) -> None:
        raise DatabaseError("relation mailops_maillog does not exist")

    monkeypatch.setattr(audit_rows, "_insert", broken_insert)
    with caplog.at_level(logging.ERROR, logger="mailops.audit"):
        assert mail.send_mail("Hello", "Body", None, ["erin@example.com"]) == 1
        assert writer.flush(10)

    assert len(audited.wait_for_messages(1)) == 1
    assert MailLog.objects.count() == 0
    assert "log row(s) not written" in caplog.text
