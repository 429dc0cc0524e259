"""The host's console (its own AdminSite at /console/): mailops' admin pages live there.

Every page must render with the site it is reached through and link only
into it: the default ``admin.site`` is not mounted in this project.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from mailops.admin.resources import EXPORT_COLUMNS
from mailops.admin.user_resources import COLUMNS
from mailops.models import MailLog, MailStatus, MailTrigger
from tests.admin_fixtures import form_fields, shown_messages
from tests.host import settings as host_settings

pytestmark = pytest.mark.django_db

MEMBERS = "/console/accounts/member/"
MAILLOG = "/console/mailops/maillog/"
OPERATOR_PERMS = ("accounts.view_member", "mailops.send_test_mail", "mailops.view_maillog")


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def assert_console_page(response: Any) -> str:
    """The page rendered with the console: its header, and no link into /admin/."""
    assert response.status_code == 200
    html = response.content.decode()
    assert "Host console" in html
    assert not [url for url in hrefs(html) if url.startswith("/admin/")]
    return html


@pytest.fixture
def operator(make_member) -> Any:
    return make_member("operator", "operator@host.example", perms=OPERATOR_PERMS, is_staff=True)


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def members(make_member) -> dict[str, Any]:
    return {
        "ada": make_member("ada", "ada@host.example"),
        "ben": make_member("ben", "ben@host.example"),
        "quiet": make_member("quiet", ""),
    }


def assert_admin_breadcrumbs(html: str, last: str, changelist: str) -> None:
    """The admin's own breadcrumbs (as on every page), into the console."""
    assert '<ol class="breadcrumbs">' in html
    assert '<div class="breadcrumbs">' not in html
    assert '<li><a href="/console/">Home</a></li>' in html
    assert f'<a href="{changelist}">' in html
    assert f'<li aria-current="page">{last}</li>' in html


def test_import_and_export_pages_have_the_admins_breadcrumbs(console_client) -> None:
    for url, last, changelist in [
        (f"{MEMBERS}import/", "Import", MEMBERS),
        (f"{MEMBERS}export/", "Export", MEMBERS),
        (f"{MAILLOG}export/", "Export", MAILLOG),
    ]:
        assert_admin_breadcrumbs(assert_console_page(console_client.get(url)), last, changelist)


def test_the_console_lists_the_mail_log_and_the_members(console_client) -> None:
    html = assert_console_page(console_client.get("/console/"))

    assert f'href="{MAILLOG}"' in html
    assert f'href="{MEMBERS}"' in html
    # The Mailers page is listed too, on this site (not only on admin.site).
    assert '<a href="/console/mailops/mailersentry/">Mailers</a>' in html
    response = console_client.get("/console/mailops/mailersentry/")
    assert response.status_code == 302
    assert response["Location"] == f"{MAILLOG}mailers/"
    assert_console_page(console_client.get(response["Location"]))


def test_send_action_confirms_sends_and_links_into_the_console(operator_client, members) -> None:
    ids = [str(member.pk) for member in members.values()]

    page = operator_client.post(
        MEMBERS, {"action": "send_test_mail", "_selected_action": ids, "index": "0"}
    )

    html = assert_console_page(page)
    assert 'href="/console/"' in html  # breadcrumbs: the console's home
    assert "quiet" in html  # listed as having no address
    fields = form_fields(html, "send-test-mail-form")
    done = operator_client.post(MEMBERS, fields, follow=True)

    assert done.status_code == 200
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@host.example", "ben@host.example"]
    rows = {row.recipient: row for row in MailLog.objects.all()}
    assert rows["ada@host.example"].user_id == members["ada"].pk  # a UUID key
    assert rows["ada@host.example"].status == MailStatus.SENT
    assert rows["ada@host.example"].triggered_by.handle == "operator"
    assert rows[""].status == MailStatus.REJECTED
    assert rows[""].user_id == members["quiet"].pk
    batch = rows["ada@host.example"].batch_id
    [(level, text)] = shown_messages(done)
    assert level == "warning"  # one member had no address
    assert "2 sent" in text
    assert f'href="{MAILLOG}?batch_id={batch}"' in text
    assert f'href="{MAILLOG}batch/{batch}/"' in text
    assert_console_page(operator_client.get(f"{MAILLOG}?batch_id={batch}"))
    assert_console_page(operator_client.get(f"{MAILLOG}batch/{batch}/"))


def test_mail_log_entry_and_mailers_pages_render_on_the_console(
    console_client, members, settings
) -> None:
    # The test runner swaps every mailer for locmem; put the host's own dict back.
    settings.MAILERS = host_settings.MAILERS
    row = MailLog.objects.create(
        recipient="ada@host.example",
        user=members["ada"],
        status=MailStatus.FAILED,
        mailer="relay",
        trigger=MailTrigger.COMMAND,
        error="550 5.1.1 no such user",
    )

    MailLog.objects.create(
        recipient="ben@host.example",
        status=MailStatus.SENT,
        mailer="relay",
        trigger=MailTrigger.COMMAND,
        triggered_by_name="oncall",
    )
    listing = assert_console_page(console_client.get(MAILLOG))
    assert f'href="{MAILLOG}{row.pk}/change/' in listing
    assert "2 mail log entries" in listing
    # Who ran the command, under its trigger; the full error is the cell's tooltip.
    assert 'Management command<span class="mailops-who">oncall</span>' in listing
    assert 'title="550 5.1.1 no such user"' in listing
    entry = assert_console_page(console_client.get(f"{MAILLOG}{row.pk}/change/"))
    assert "550 5.1.1 no such user" in entry
    assert f'href="{MEMBERS}{members["ada"].pk}/change/"' in entry
    mailers = assert_console_page(console_client.get(f"{MAILLOG}mailers/"))
    assert "relay" in mailers
    assert "127.0.0.1" in mailers


def test_mail_log_export_names_members_by_their_handle(console_client, members, operator):
    MailLog.objects.create(
        recipient="ada@host.example",
        user=members["ada"],
        triggered_by=operator,
        status=MailStatus.SENT,
        mailer="default",
        trigger=MailTrigger.ADMIN_ACTION,
    )
    data = {"format": "0", "resource": "0"}
    data.update({f"maillogresource_{column}": "on" for column in EXPORT_COLUMNS})
    exported = console_client.post(f"{MAILLOG}export/", data)
    streamed = console_client.get(f"{MAILLOG}export-csv/")

    assert exported.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert (row["user"], row["triggered_by"]) == ("ada", "operator")
    text = b"".join(streamed.streaming_content).decode("utf-8-sig")
    [streamed_row] = list(csv.DictReader(io.StringIO(text)))
    assert (streamed_row["user"], streamed_row["triggered_by"]) == ("ada", "operator")


def test_member_export_has_the_models_own_columns(console_client, members) -> None:
    assert COLUMNS == ("handle", "contact_email", "is_staff", "is_active")
    data = {"format": "0", "resource": "0"}
    data.update({f"userrecipientresource_{column}": "on" for column in COLUMNS})

    response = console_client.post(f"{MEMBERS}export/", data)

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS)
    assert ["ada", "ada@host.example", "0", "1"] in rows


def test_member_import_previews_then_creates_members(console_client, django_user_model) -> None:
    upload = SimpleUploadedFile(
        "members.csv",
        b"handle,contact_email,is_staff,first_name\nnewbie,newbie@host.example,no,Ignored\n",
        content_type="text/csv",
    )
    page = console_client.post(
        f"{MEMBERS}import/", {"resource": "0", "format": "0", "import_file": upload}
    )
    html = assert_console_page(page)
    assert "newbie@host.example" in html
    assert_admin_breadcrumbs(html, "Import", MEMBERS)
    assert not django_user_model.objects.filter(handle="newbie").exists()  # a preview

    form = page.context["confirm_form"]
    data = {name: form[name].value() for name in form.fields}
    done = console_client.post(f"{MEMBERS}process_import/", data, follow=True)

    assert done.status_code == 200
    newbie = django_user_model.objects.get(handle="newbie")
    assert newbie.contact_email == "newbie@host.example"
    assert not newbie.has_usable_password()
    assert not newbie.is_superuser


@override_settings(ROOT_URLCONF="tests.host.two_sites_urls")
def test_with_the_default_site_mounted_too_console_pages_link_only_into_the_console(
    operator_client, members
) -> None:
    row = MailLog.objects.create(
        recipient="ada@host.example",
        user=members["ada"],
        status=MailStatus.FAILED,
        mailer="default",
        trigger=MailTrigger.COMMAND,
        error="550 no such user",
    )
    ids = [str(members["ada"].pk)]

    confirmation = operator_client.post(
        MEMBERS, {"action": "send_test_mail", "_selected_action": ids, "index": "0"}
    )
    done = operator_client.post(
        MEMBERS, form_fields(confirmation.content.decode(), "send-test-mail-form"), follow=True
    )
    batch = MailLog.objects.exclude(pk=row.pk).get().batch_id

    for page in (
        confirmation,
        done,
        operator_client.get(MAILLOG),
        operator_client.get(f"{MAILLOG}{row.pk}/change/"),
        operator_client.get(f"{MAILLOG}mailers/"),
        operator_client.get(f"{MAILLOG}batch/{batch}/"),
    ):
        assert_console_page(page)
    [(_, text)] = shown_messages(done)
    assert f'href="{MAILLOG}?batch_id={batch}"' in text


def test_a_german_host_shows_the_mail_log_in_german(operator_client: Client) -> None:
    """The compiled catalogue ships with the package (wheel included): no English left."""
    MailLog.objects.create(
        recipient="ada@host.example",
        status=MailStatus.FAILED,
        mailer="default",
        trigger=MailTrigger.ADMIN_ACTION,
        error="550 5.1.1 unknown",
    )
    with override_settings(LANGUAGE_CODE="de"):
        html = assert_console_page(operator_client.get(MAILLOG))
    assert "Mail-Protokolleinträge" in html
    assert "Fehlgeschlagen" in html
    assert "In dieser Liste" in html
    assert "In this list" not in html
