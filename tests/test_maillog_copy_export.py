"""Exports at database speed: COPY on PostgreSQL, the streamed export's bytes; exportmaillog."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from mailops.exports.copy_csv import copy_supported, iter_copy_csv
from mailops.exports.resources import EXPORT_COLUMNS, iter_csv
from mailops.models import MailLog, MailStatus, MailTrigger
from tests.maillog_fixtures import CHANGELIST, make_log

pytestmark = pytest.mark.django_db

STREAM = f"{CHANGELIST}export-csv/"
SECRET = "hunter2-Sm7p-app-password"
UTC = ZoneInfo("UTC")
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="COPY ... TO STDOUT is PostgreSQL's"
)


def awkward_rows(make_user: Any) -> None:
    """Rows whose every cell tests a difference between the database's CSV and Python's."""
    alice = make_user("=alice", "alice@example.com")
    make_log(
        recipient="=cmd@example.com",
        subject='He said "hi", then\nleft; a,b',
        user=alice,
        triggered_by=alice,
        status=MailStatus.FAILED,
        smtp_code=535,
        error=f"535 auth failed: {SECRET} password=abc123",
        created_at=datetime(2026, 2, 14, 2, 30, tzinfo=UTC),  # summer in São Paulo
    )
    make_log(
        subject="",
        arrival="inbox",
        arrived_at=datetime(2026, 7, 1, 12, 0, 0, 123, tzinfo=UTC),
        created_at=datetime(2026, 7, 1, 11, 59, 59, 999999, tzinfo=UTC),
        sent_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        message_id="<x@example.com>",
        triggered_by_name="ops\tuser",
    )
    make_log(subject="-1", error="=1+1", status=MailStatus.FAILED)
    make_log(subject="\ttab", recipient="Zoë <zoe@example.com>", error="\r\nline")
    make_log(
        subject="@sum", authentication_results="spf=pass\r\ndkim=pass", trigger=MailTrigger.SITE
    )
    make_log(subject=" spaced ", from_email='"Quoted" <q@example.com>', error=" ")
    for n in range(30):
        make_log(recipient=f"bulk{n}@example.com", attempts=n)


@pytest.fixture
def secret_mailer(settings: Any) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "gmail": {
            "BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "OPTIONS": {"username": "ops@example.com", "password": SECRET},
        },
    }


def python_csv(queryset: Any) -> bytes:
    return "".join(iter_csv(queryset)).encode()


@on_postgresql
@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "Asia/Kolkata", "UTC"])
def test_copy_writes_the_same_bytes_as_the_streamed_export(
    make_user: Any, secret_mailer: None, zone: str
) -> None:
    awkward_rows(make_user)
    queryset = MailLog.objects.all()
    with timezone.override(zone):
        assert copy_supported(queryset)
        expected = python_csv(queryset)
        written = b"".join(iter_copy_csv(queryset, rows_per_chunk=7))
    assert written == expected
    assert SECRET.encode() not in written
    assert b"'=cmd@example.com" in written


@on_postgresql
def test_copy_keeps_the_filters_and_the_order(make_user: Any) -> None:
    awkward_rows(make_user)
    queryset = MailLog.objects.filter(status=MailStatus.FAILED).order_by("created_at", "id")
    written = b"".join(iter_copy_csv(queryset))
    assert written == python_csv(queryset)
    rows = list(csv.DictReader(io.StringIO(written.decode())))
    assert [row["status"] for row in rows] == ["failed", "failed"]


@on_postgresql
def test_the_admin_streams_the_database_written_csv_with_its_filters(
    auditor: Client, make_user: Any, secret_mailer: None
) -> None:
    awkward_rows(make_user)
    response = auditor.get(STREAM + "?status__exact=failed")
    body = b"".join(response.streaming_content)
    assert body == python_csv(MailLog.objects.filter(status=MailStatus.FAILED))
    assert SECRET.encode() not in body


def test_elsewhere_the_streamed_export_is_used(make_user: Any) -> None:
    queryset = MailLog.objects.all()
    assert copy_supported(queryset) is (connection.vendor == "postgresql")


def test_without_a_named_time_zone_the_streamed_export_is_used() -> None:
    with timezone.override(timezone.get_fixed_timezone(60)):
        assert not copy_supported(MailLog.objects.all())


def test_the_stream_still_needs_the_export_permission(admin_client_for: Any) -> None:
    viewer = admin_client_for("viewer", perms=("mailops.view_maillog",))
    make_log()
    assert viewer.get(STREAM).status_code == 403


# --- exportmaillog ---------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("exportmaillog", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_exportmaillog_writes_the_csv_of_the_filtered_log(
    make_user: Any, secret_mailer: None
) -> None:
    awkward_rows(make_user)
    gmail = make_log(mailer="gmail", status=MailStatus.FAILED, error="x")
    output = run("--status", "failed", "--mailer", "gmail")
    assert output.encode() == python_csv(MailLog.objects.filter(pk=gmail.pk))
    everything = run()
    assert everything.encode() == python_csv(MailLog.objects.all())
    assert SECRET not in everything


def test_exportmaillog_filters_by_time_trigger_batch_and_search() -> None:
    batch = uuid.uuid4()
    old = make_log(created_at=datetime(2025, 1, 10, 12, tzinfo=UTC), subject="Invoice 1")
    new = make_log(created_at=datetime(2025, 3, 10, 12, tzinfo=UTC), batch_id=batch)
    site = make_log(trigger=MailTrigger.SITE, recipient="site@example.com")

    def ids(*args: str) -> list[int]:
        return [int(row["id"]) for row in csv.DictReader(io.StringIO(run(*args)))]

    assert ids("--until", "2025-01-31") == [old.pk]
    assert ids("--since", "2025-02-01", "--until", "2025-12-31") == [new.pk]
    assert ids("--since", "2025-03-10T11:00:00+00:00", "--until", "2025-03-10T13:00Z") == [new.pk]
    assert ids("--trigger", "site") == [site.pk]
    assert ids("--batch", str(batch)) == [new.pk]
    assert ids("--search", "invoice") == [old.pk]
    assert ids("--search", "site@") == [site.pk]


def test_exportmaillog_writes_json_lines_with_the_same_columns(secret_mailer: None) -> None:
    make_log(status=MailStatus.FAILED, error=f"535 {SECRET}", subject="=not a formula here")
    lines = run("--format", "jsonl").splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert list(row) == list(EXPORT_COLUMNS)
    assert row["subject"] == "=not a formula here"
    assert SECRET not in lines[0]


def test_exportmaillog_writes_a_file(tmp_path: Path) -> None:
    make_log()
    target = tmp_path / "log.csv"
    assert run("--output", str(target)) == ""
    assert target.read_bytes() == python_csv(MailLog.objects.all())


@pytest.mark.parametrize(
    "args",
    [
        ("--since", "yesterday"),
        ("--until", "2025-13-45"),
        ("--batch", "nope"),
        ("--output", "/nonexistent/dir/log.csv"),
    ],
)
def test_exportmaillog_bad_input_is_a_usage_error(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError) as error:
        run(*args)
    assert error.value.returncode == 2
