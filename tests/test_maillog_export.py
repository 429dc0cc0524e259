"""Exports of the mail log: the filtered list, only with the permission, no secrets."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from django.test import Client

from mailops.admin.resources import EXPORT_COLUMNS, MailLogResource, iter_csv, spreadsheet_safe
from mailops.models import MailLog, MailStatus
from tests.maillog_fixtures import (
    CHANGELIST,
    make_log,
)

pytestmark = pytest.mark.django_db

EXPORT = f"{CHANGELIST}export/"
STREAM = f"{CHANGELIST}export-csv/"
FORMATS = {"csv": "0", "xlsx": "1", "json": "2"}
SECRET = "hunter2-Sm7p-app-password"


def export(client: Client, fmt: str, query: str = "") -> Any:
    """Submit import-export's export form as the admin page would."""
    data = {"format": FORMATS[fmt], "resource": "0"}
    data.update({f"maillogresource_{column}": "on" for column in EXPORT_COLUMNS})
    return client.post(EXPORT + query, data)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def streamed(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def mixed_log(make_user: Callable[..., Any]) -> dict[str, MailLog]:
    alice = make_user("alice", "alice@example.com")
    ops = make_user("ops", "ops@example.com")
    return {
        "sent": make_log(
            status=MailStatus.SENT,
            recipient="alice@example.com",
            user=alice,
            triggered_by=ops,
            message_id="<sent.1@mailops.example>",
            subject="Hello",
        ),
        "failed": make_log(
            status=MailStatus.FAILED,
            recipient="bob@example.com",
            mailer="gmail",
            error="550 5.1.1 no such user",
            smtp_code=550,
            subject="Hello",
        ),
        "other_failed": make_log(
            status=MailStatus.FAILED,
            recipient="carol@example.com",
            error="421 try later",
            smtp_code=421,
        ),
    }


def test_csv_export_holds_the_filtered_rows_with_the_audit_columns(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    response = export(auditor, "csv", "?status__exact=failed&mailer=gmail")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response.content.decode())
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    failed = mixed_log["failed"]
    assert [r["id"] for r in rows] == [str(failed.pk)]
    row = rows[0]
    assert (row["status"], row["recipient"], row["mailer"], row["smtp_code"]) == (
        "failed",
        "bob@example.com",
        "gmail",
        "550",
    )
    assert row["error"] == "550 5.1.1 no such user"
    assert row["batch_id"] == str(failed.batch_id)
    assert row["created_at"].startswith(failed.created_at.date().isoformat())
    assert "body" not in row


def test_users_are_exported_by_username(auditor: Client, mixed_log: dict[str, MailLog]) -> None:
    rows = csv_rows(export(auditor, "csv", "?status__exact=sent").content.decode())

    assert (rows[0]["user"], rows[0]["triggered_by"]) == ("alice", "ops")


def test_xlsx_export_holds_the_filtered_rows(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    response = export(auditor, "xlsx", "?status__exact=failed")

    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.values)
    header, rows = values[0], values[1:]
    assert list(header) == list(EXPORT_COLUMNS)
    recipients = {row[header.index("recipient")] for row in rows}
    assert recipients == {"bob@example.com", "carol@example.com"}


def test_json_export_holds_the_searched_rows(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    response = export(auditor, "json", "?q=alice@")

    data = json.loads(response.content)
    assert [(r["recipient"], r["message_id"]) for r in data] == [
        ("alice@example.com", "<sent.1@mailops.example>")
    ]


def test_the_export_form_offers_csv_xlsx_and_json(auditor: Client) -> None:
    response = auditor.get(EXPORT + "?status__exact=failed")

    assert response.status_code == 200
    choices = [label for value, label in response.context["form"].fields["format"].choices if value]
    assert choices == ["csv", "xlsx", "json"]


def test_the_changelist_has_one_export_whose_page_offers_the_streamed_csv(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    html = auditor.get(CHANGELIST + "?status__exact=failed").content.decode()

    # One "Export" button in the object tools, carrying the list's filters ...
    assert f'href="{EXPORT}?status__exact=failed"' in html
    assert STREAM not in html
    # ... whose page offers the formats and, for large logs, the streamed CSV.
    page = auditor.get(EXPORT + "?status__exact=failed").content.decode()
    assert f'href="{STREAM}?status__exact=failed"' in page
    assert "Export all as CSV (large logs)" in page
    assert "built in memory" in page


def test_export_is_refused_without_the_export_permission(
    admin_client_for: Callable[..., Client], mixed_log: dict[str, MailLog]
) -> None:
    viewer = admin_client_for("viewer", perms=("mailops.view_maillog",))

    assert viewer.get(EXPORT).status_code == 403
    assert export(viewer, "csv").status_code == 403
    assert viewer.get(STREAM).status_code == 403
    html = viewer.get(CHANGELIST).content.decode()
    assert EXPORT not in html


def test_the_export_permission_alone_does_not_open_the_log(
    admin_client_for: Callable[..., Client], mixed_log: dict[str, MailLog]
) -> None:
    exporter = admin_client_for("exporter", perms=("mailops.export_maillog",))

    assert exporter.get(STREAM).status_code == 403
    assert export(exporter, "csv").status_code == 403


def test_streamed_csv_matches_the_filtered_list_in_list_order(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    response = auditor.get(STREAM + "?status__exact=failed")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="maillog-')
    rows = csv_rows(streamed(response))
    newest_first = [mixed_log["other_failed"].pk, mixed_log["failed"].pk]
    assert [int(r["id"]) for r in rows] == newest_first
    assert rows[1]["error"] == "550 5.1.1 no such user"


def test_streamed_csv_and_import_export_csv_agree(
    auditor: Client, mixed_log: dict[str, MailLog]
) -> None:
    ours = csv_rows(streamed(auditor.get(STREAM)))
    theirs = csv_rows(export(auditor, "csv").content.decode())

    assert sorted(ours, key=lambda r: r["id"]) == sorted(theirs, key=lambda r: r["id"])


def test_streamed_csv_reads_in_chunks() -> None:
    for i in range(7):
        make_log(recipient=f"r{i}@example.com")

    chunks = list(iter_csv(MailLog.objects.order_by("pk"), rows_per_chunk=3))

    assert len(chunks) == 1 + 3  # header, then 3 + 3 + 1 rows
    assert sum(chunk.count("\n") for chunk in chunks) == 8


def test_a_bad_filter_on_an_export_is_a_400_not_a_crash(auditor: Client) -> None:
    assert auditor.get(STREAM + "?batch_id=nope").status_code == 400
    assert auditor.get(EXPORT + "?batch_id=nope").status_code == 400


def test_no_export_contains_a_configured_secret(
    auditor: Client, settings: Any, smtp_server: Any
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "gmail": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {**smtp_server.options(), "username": "ops@example.com", "password": SECRET},
        },
    }
    # A row as older code (or a server echoing an AUTH line) might have left it.
    make_log(
        status=MailStatus.FAILED,
        mailer="gmail",
        error=f"535 5.7.8 Username and Password not accepted: {SECRET}",
    )
    make_log(
        status=MailStatus.FAILED,
        mailer="gmail",
        error="connect smtp+tls://ops:" + SECRET + "@smtp.gmail.com:587 failed",
    )

    outputs = [
        export(auditor, "csv").content.decode(),
        export(auditor, "json").content.decode(),
        streamed(auditor.get(STREAM)),
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(export(auditor, "xlsx").content)).active
    outputs.append(json.dumps([list(map(str, row)) for row in sheet.values]))

    for output in outputs:
        assert SECRET not in output
        assert "535 5.7.8 Username and Password not accepted" in output


def test_spreadsheet_exports_cannot_start_a_formula(auditor: Client) -> None:
    make_log(subject='=HYPERLINK("http://evil.example","click")', recipient="+1@example.com")

    row = csv_rows(streamed(auditor.get(STREAM)))[0]
    assert row["subject"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["recipient"] == "'+1@example.com"
    assert csv_rows(export(auditor, "csv").content.decode())[0]["subject"].startswith("'=")
    sheet = openpyxl.load_workbook(io.BytesIO(export(auditor, "xlsx").content)).active
    assert all(not str(cell).startswith("=") for row in sheet.values for cell in row if cell)
    # JSON is not opened by spreadsheets: the text stays as it was.
    assert json.loads(export(auditor, "json").content)[0]["subject"].startswith("=HYPERLINK")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("plain", "plain"), (550, 550)],
)
def test_spreadsheet_safe(value: Any, expected: Any) -> None:
    assert spreadsheet_safe(value) == expected


def test_the_resource_leaves_the_body_out() -> None:
    assert "body" not in MailLogResource().get_export_headers()


def test_csv_export_carries_the_proof_of_arrival(auditor: Client) -> None:
    from django.utils import timezone

    log = make_log(status=MailStatus.SENT, recipient="ops@example.com")
    MailLog.objects.filter(pk=log.pk).update(
        arrival="junk",
        arrived_at=timezone.now(),
        arrival_folder="Junk",
        authentication_results="spf=pass dkim=fail dmarc=fail",
    )

    [row] = csv_rows(export(auditor, "csv", "?arrival=junk").content.decode())

    assert (row["arrival"], row["arrival_folder"], row["authentication_results"]) == (
        "junk",
        "Junk",
        "spf=pass dkim=fail dmarc=fail",
    )
    assert row["arrived_at"].startswith(str(timezone.localdate()))
