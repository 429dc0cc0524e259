"""Loading test recipients: user import (preview, confirm, all or nothing) and export."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
import tablib
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from mailops.admin.user_resources import COLUMNS, UserRecipientResource
from tests.admin_fixtures import changelist_url, shown_messages

pytestmark = pytest.mark.django_db

User = get_user_model()
IMPORT_URL = "admin:auth_user_import"
PROCESS_URL = "admin:auth_user_process_import"
EXPORT_URL = "admin:auth_user_export"
CSV_FORMAT, XLSX_FORMAT = "0", "1"  # the order of UserImportExportMixin.import_formats


@pytest.fixture
def importer(make_user) -> Any:
    return make_user(
        "importer",
        "importer@example.com",
        perms=("auth.view_user", "auth.add_user", "auth.change_user"),
        is_staff=True,
    )


@pytest.fixture
def importer_client(client, importer) -> Any:
    client.force_login(importer)
    return client


def csv_file(text: str, name: str = "recipients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def preview(client: Any, upload: SimpleUploadedFile, fmt: str = CSV_FORMAT) -> Any:
    """The import form's POST: a dry run whose result the page shows."""
    return client.post(reverse(IMPORT_URL), {"resource": "0", "format": fmt, "import_file": upload})


def confirm_import(client: Any, page: Any) -> Any:
    """Press "Confirm import" on a preview page."""
    form = page.context["confirm_form"]
    assert form is not None, "the preview offers no confirm step"
    data = {name: form[name].value() for name in form.fields}
    return client.post(reverse(PROCESS_URL), data, follow=True)


def test_import_previews_then_creates_users_without_password_or_superuser(
    importer_client,
) -> None:
    upload = csv_file(
        "username,email,first_name,last_name,is_staff,is_active,password,is_superuser\n"
        "newbie,newbie@example.com,New,Bie,yes,1,hunter2,1\n"
        "quiet,quiet@example.com,,,no,,,\n"
    )

    page = preview(importer_client, upload)

    assert page.status_code == 200
    result = page.context["result"]
    assert not result.has_errors()
    assert not result.has_validation_errors()
    assert [row.import_type for row in result.rows] == ["new", "new"]
    assert "newbie@example.com" in page.content.decode()
    # The preview is a dry run.
    assert not User.objects.filter(username__in=["newbie", "quiet"]).exists()

    response = confirm_import(importer_client, page)

    assert response.redirect_chain == [(changelist_url(), 302)]
    assert ("success", "Import finished: 2 new, 0 updated, 0 deleted and 0 skipped users.") in (
        shown_messages(response)
    )
    newbie = User.objects.get(username="newbie")
    assert (newbie.email, newbie.first_name, newbie.last_name) == (
        "newbie@example.com",
        "New",
        "Bie",
    )
    assert newbie.is_staff
    assert newbie.is_active
    assert not newbie.is_superuser
    assert not newbie.has_usable_password()
    assert not newbie.check_password("hunter2")
    quiet = User.objects.get(username="quiet")
    # Empty cells leave the defaults.
    assert (quiet.is_staff, quiet.is_active) == (False, True)


def test_import_updates_a_user_but_never_its_password_or_superuser_status(
    importer_client, make_user
) -> None:
    alice = make_user("alice", "old@example.com")
    upload = csv_file(
        "username,email,first_name,is_superuser,password\n"
        "alice,alice@example.com,Alice,1,pbkdf2_sha256$1$x$y\n"
    )

    confirm_import(importer_client, preview(importer_client, upload))

    alice.refresh_from_db()
    assert (alice.email, alice.first_name) == ("alice@example.com", "Alice")
    assert not alice.is_superuser
    assert alice.check_password("pw-alice")


def test_bad_rows_are_shown_per_row_and_nothing_is_imported(importer_client, make_user) -> None:
    make_user("alice", "alice@example.com")
    upload = csv_file(
        "username,email,is_active\n"
        "good,good@example.com,1\n"  # row 1
        "broken,not-an-address,1\n"  # row 2
        "good,again@example.com,1\n"  # row 3: duplicate in the file
        ",nobody@example.com,1\n"  # row 4: no username
        "flaky,flaky@example.com,ja\n"  # row 5: not a yes/no
        "ALICE,alice2@example.com,1\n"  # row 6: differs from "alice" only in case
    )

    page = preview(importer_client, upload)

    result = page.context["result"]
    errors = {row.number: row.error_dict for row in result.invalid_rows}
    assert sorted(errors) == [2, 3, 4, 5, 6]
    assert errors[2] == {"email": ["Enter a valid email address."]}
    assert errors[3] == {"username": ["Duplicate username 'good': row 1 already has it."]}
    assert errors[4] == {"username": ["This field cannot be blank."]}
    assert errors[5] == {"is_active": ["Enter yes or no (true/false, 1/0), not 'ja'."]}
    assert errors[6] == {"username": ["A user named 'alice' already exists (differs in case)."]}
    assert page.context.get("confirm_form") is None
    html = page.content.decode()
    assert "Enter a valid email address." in html
    assert "Duplicate username" in html
    assert not User.objects.filter(username__in=["good", "broken", "flaky", "ALICE"]).exists()


def test_a_row_that_turns_bad_before_confirming_stops_the_whole_import(
    importer_client, make_user
) -> None:
    page = preview(
        importer_client, csv_file("username,email\ndora,dora@example.com\nerin,erin@example.com\n")
    )
    # Someone creates a look-alike user between preview and confirm.
    make_user("Erin", "erin@elsewhere.example")

    response = confirm_import(importer_client, page)

    assert response.redirect_chain == [(reverse(IMPORT_URL), 302)]
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert text.startswith("Import stopped: nothing was imported because of errors in row 2.")
    # dora (row 1) was valid, but the import is all or nothing.
    assert not User.objects.filter(username__in=["dora", "erin"]).exists()


def test_only_a_superuser_may_change_a_superuser_by_import(
    importer_client, client, superuser
) -> None:
    upload = csv_file("username,email,is_active\nroot,root@example.com,0\n")

    page = preview(importer_client, upload)
    [invalid] = page.context["result"].invalid_rows
    assert invalid.error_dict == {
        "username": ["'root' is a superuser; only a superuser may change it."]
    }

    client.force_login(superuser)
    confirm_import(client, preview(client, csv_file("username,first_name\nroot,Root\n")))
    superuser.refresh_from_db()
    assert superuser.first_name == "Root"
    assert superuser.is_superuser


def test_xlsx_import(importer_client) -> None:
    dataset = tablib.Dataset(headers=["username", "email", "is_staff"])
    dataset.append(["sheetuser", "sheet@example.com", True])
    upload = SimpleUploadedFile(
        "recipients.xlsx",
        dataset.export("xlsx"),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )

    confirm_import(importer_client, preview(importer_client, upload, XLSX_FORMAT))

    user = User.objects.get(username="sheetuser")
    assert (user.email, user.is_staff, user.has_usable_password()) == (
        "sheet@example.com",
        True,
        False,
    )


def test_import_needs_the_add_and_change_permissions(client, make_user) -> None:
    viewer = make_user("viewer", perms=("auth.view_user", "auth.change_user"), is_staff=True)
    client.force_login(viewer)

    assert client.get(reverse(IMPORT_URL)).status_code == 403
    response = preview(client, csv_file("username\nsneaky\n"))
    assert response.status_code == 403
    assert not User.objects.filter(username="sneaky").exists()


def export(client: Any, fmt: str) -> Any:
    fields = {f"userrecipientresource_{name}": "on" for name in COLUMNS}
    return client.post(reverse(EXPORT_URL), {"resource": "0", "format": fmt, **fields})


def test_export_csv_has_exactly_the_recipient_columns(importer_client, recipients_users) -> None:
    response = export(importer_client, CSV_FORMAT)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["alice"] == ["alice", "alice@example.com", "", "", "0", "1"]
    assert by_name["nomail"][1] == ""
    assert "md5$" not in response.content.decode()  # no password hashes


def test_export_xlsx(importer_client, recipients_users) -> None:
    response = export(importer_client, XLSX_FORMAT)

    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in sheet[1]] == list(COLUMNS)
    assert sheet.max_row == 1 + User.objects.count()


def test_export_needs_the_view_permission(client, make_user) -> None:
    nobody = make_user("nobody", is_staff=True)
    client.force_login(nobody)

    assert export(client, CSV_FORMAT).status_code == 403


def test_resource_exports_and_imports_only_the_recipient_fields() -> None:
    resource = UserRecipientResource()

    assert [field.column_name for field in resource.get_export_fields()] == list(COLUMNS)
    assert sorted(field.column_name for field in resource.get_import_fields()) == sorted(COLUMNS)
