"""What a site admin meets in the admin, read as the HTML the pages render (issue 21, item 7)."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailops.admin.forms import mailer_choices
from mailops.models import ArrivalStatus, MailLog, MailStatus
from tests.admin_fixtures import shown_messages
from tests.maillog_fixtures import CHANGELIST, make_log

pytestmark = pytest.mark.django_db

CONSOLE = "django.core.mail.backends.console.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
# The mail log rows of fixtures/demo.json.
DEMO_ROWS = (2001, 2002, 2003, 2004)


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


@pytest.fixture
def console_mailer(settings: Any) -> None:
    """The demo's mailers: the console prints mail, the outbox writes files."""
    settings.MAILERS = {**settings.MAILERS, "default": {"BACKEND": CONSOLE}}


def entry_page(client: Client, log: MailLog) -> str:
    response = client.get(f"{CHANGELIST}{log.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def labels(html: str) -> list[str]:
    """The field labels of an entry page (read-only fields render as <label>)."""
    found = re.findall(r"<label>(.*?)</label>", html)
    return [re.sub(r"<[^>]+>", "", label).rstrip(":").lower() for label in found]


def fieldset(html: str, title: str) -> str:
    start = html.index(f">{title}</h2>")
    return html[start : html.index("</fieldset>", start)]


# --- the mail log list ---------------------------------------------------------------


def test_the_in_doubt_filter_is_titled_as_the_docs_name_it(admin_client: Client) -> None:
    doubtful = make_log(status=MailStatus.FAILED, in_doubt=True)
    make_log(status=MailStatus.FAILED)

    response = admin_client.get(CHANGELIST, {"in_doubt__exact": "1"})

    html = response.content.decode()
    assert "By in doubt" in html
    assert "may have been delivered" not in html
    assert [log.pk for log in response.context["cl"].result_list] == [doubtful.pk]


def test_dates_are_filtered_by_the_date_hierarchy_only(admin_client: Client) -> None:
    old = make_log(created_at=timezone.now() - timedelta(days=40))
    make_log()

    html = admin_client.get(CHANGELIST).content.decode()

    assert "By created" not in html
    assert "Filter by created" in html, "the date hierarchy"
    # Links made with the old date filter still filter.
    since = timezone.localtime(timezone.now() - timedelta(days=7)).isoformat()
    response = admin_client.get(CHANGELIST, {"created_at__gte": since})
    assert old not in response.context["cl"].result_list


def test_the_list_offers_one_export(admin_client: Client) -> None:
    make_log()

    html = admin_client.get(CHANGELIST).content.decode()

    assert html.count('class="export_link"') == 1
    assert "Stream CSV" not in html


# --- an entry's page ---------------------------------------------------------------------


def test_an_entry_never_verified_has_a_one_line_arrival_section(admin_client: Client) -> None:
    log = make_log(sent_at=timezone.now())

    html = entry_page(admin_client, log)

    arrival = fieldset(html, "Arrival")
    assert "not verified" in arrival
    assert labels(arrival) == ["arrival"]
    for empty in ("arrival folder", "arrived at", "latency", "authentication results"):
        assert empty not in arrival


def test_a_verified_entry_shows_the_whole_arrival_section(admin_client: Client) -> None:
    now = timezone.now()
    log = make_log(
        sent_at=now,
        arrival=ArrivalStatus.INBOX,
        verified_at=now,
        arrived_at=now,
        arrival_folder="INBOX",
        authentication_results="spf=pass",
    )

    arrival = fieldset(entry_page(admin_client, log), "Arrival")

    assert "not verified" not in arrival
    assert {"arrival folder", "authentication results", "latency"} <= set(labels(arrival))


def test_an_entry_page_hides_the_engines_bookkeeping(admin_client: Client) -> None:
    log = make_log(sent_at=timezone.now(), claimed_by="a1b2c3d4")

    html = entry_page(admin_client, log)

    shown = labels(html)
    assert "claimed by" not in shown
    assert "a1b2c3d4" not in html
    # Sent: there is no next attempt, and it is not in doubt.
    assert "next attempt" not in shown
    assert "in doubt" not in shown
    # Sent by a Django user, not by a command's OS user.
    assert "triggered by (name)" not in shown
    # What an auditor needs stays.
    assert {"mailer", "backend", "attempts", "sent at", "created", "trigger"} <= set(shown)


def test_a_row_waiting_for_a_retry_says_when_in_words(admin_client: Client) -> None:
    log = make_log(
        status=MailStatus.QUEUED,
        attempts=1,
        error="451 try again later",
        next_attempt_at=timezone.now() + timedelta(minutes=5, seconds=30),
    )

    delivery = fieldset(entry_page(admin_client, log), "Delivery")

    assert "next attempt" in labels(delivery)
    assert re.search(r"in 5\xa0minutes \(", delivery)


def test_an_entry_in_doubt_says_what_that_means(admin_client: Client) -> None:
    log = make_log(status=MailStatus.FAILED, in_doubt=True, error="connection lost after DATA")

    delivery = fieldset(entry_page(admin_client, log), "Delivery")

    assert "in doubt" in labels(delivery)
    assert "may have been delivered" in delivery
    assert "not retried automatically" in delivery


# --- the Mailers page -----------------------------------------------------------------------


def test_a_check_of_the_console_mailer_says_there_is_nothing_to_connect_to(
    admin_client: Client, console_mailer: None
) -> None:
    page = reverse("admin:mailops_mailers")

    response = admin_client.post(page, {"alias": "default"}, follow=True)

    assert shown_messages(response) == [
        ("info", "Mailer “default”: nothing to connect to: the console mailer prints mail.")
    ]
    assert "passed" not in response.content.decode()
    assert not MailLog.objects.exists(), "no check row claims a connection"


def test_sendtestmail_check_says_the_same_about_the_console_mailer(console_mailer: None) -> None:
    out = StringIO()

    call_command("sendtestmail", "--check", stdout=out)

    assert (
        out.getvalue()
        == "local       default: nothing to connect to: the console mailer prints mail\n"
    )
    assert not MailLog.objects.exists()


def test_a_mailer_that_delivers_nowhere_is_offered_no_dns_check(
    admin_client: Client, console_mailer: None
) -> None:
    html = admin_client.get(reverse("admin:mailops_mailers")).content.decode()

    row = html[html.index('id="mailer-default"') :]
    row = row[: row.index("</tr>")]
    assert "Check DNS" not in row
    assert "Check connection" not in row
    assert "not needed: this mailer delivers nowhere" in row
    assert "nothing to connect to" in row
    # A stale form still posting it gets the reason, not a red report.
    response = admin_client.post(reverse("admin:mailops_mailer_dns", args=["default"]), follow=True)
    assert shown_messages(response) == [
        (
            "info",
            "Mailer “default” delivers nowhere (console (prints mail)): its DNS does not matter.",
        )
    ]


def test_the_default_alias_is_shown_once_and_another_default_is_named(
    settings: Any, admin_client: Client
) -> None:
    html = admin_client.get(reverse("admin:mailops_mailers")).content.decode()
    assert '<th scope="row">default</th>' in html
    assert "default (default)" not in html

    settings.MAILOPS = {**settings.MAILOPS, "DEFAULT_MAILER": "outbox"}
    html = admin_client.get(reverse("admin:mailops_mailers")).content.decode()
    assert '<th scope="row">outbox <small>(default mailer)</small></th>' in html


def test_mailer_choices_name_the_alias_once_and_say_what_it_is(settings: Any) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": CONSOLE},
        "gmail": {
            "BACKEND": SMTP,
            "OPTIONS": {
                "host": "smtp.gmail.com",
                "port": 587,
                "use_tls": True,
                "username": "ops@gmail.com",
                "password": "app-password-never-shown",
            },
        },
        "postmark": {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": "token-never-shown"},
        },
    }

    assert mailer_choices() == [
        ("default", "default — console (prints mail)"),
        ("gmail", "gmail — SMTP smtp.gmail.com:587, STARTTLS"),
        ("postmark", "postmark — Postmark API"),
    ]


def test_the_confirmation_page_lists_the_described_mailers(
    admin_client: Client, console_mailer: None
) -> None:
    user = get_user_model().objects.create_user("alice", "alice@example.com")

    page = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_test_mail", "_selected_action": [str(user.pk)], "index": "0"},
    ).content.decode()

    assert '<option value="default" selected>default — console (prints mail)</option>' in page
    assert "EmailBackend" not in page


# --- the admin index ------------------------------------------------------------------------


def test_the_mailers_page_is_on_the_admin_index(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()

    entry = reverse("admin:mailops_mailersentry_changelist")
    assert f'<a href="{entry}">Mailers</a>' in html
    # The row opens the page; nothing can be added there.
    assert reverse("admin:mailops_mailersentry_changelist") + "add/" not in html
    response = admin_client.get(entry)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:mailops_mailers")


def test_the_mailers_row_follows_the_pages_permissions(
    admin_client_for: Any,
) -> None:
    viewer = admin_client_for("viewer", perms=("mailops.view_maillog",))
    stranger = admin_client_for("stranger", perms=("auth.view_user",))
    entry = reverse("admin:mailops_mailersentry_changelist")

    assert entry in viewer.get(reverse("admin:index")).content.decode()
    assert entry not in stranger.get(reverse("admin:index")).content.decode()
    assert stranger.get(entry).status_code == 403


# --- mailops_deliver from cron ----------------------------------------------------------------


def test_deliver_at_verbosity_0_prints_nothing_when_all_is_well() -> None:
    make_log(status=MailStatus.QUEUED, attempts=0, sent_at=None, recipient="a@example.com")
    out, err = StringIO(), StringIO()

    call_command("mailops_deliver", verbosity=0, stdout=out, stderr=err)

    assert (out.getvalue(), err.getvalue()) == ("", "")
    assert MailLog.objects.get().status == MailStatus.SENT


def test_deliver_at_verbosity_0_still_reports_a_failure() -> None:
    make_log(status=MailStatus.QUEUED, attempts=0, sent_at=None, recipient="not-an-address")
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("mailops_deliver", verbosity=0, stdout=out)

    assert failure.value.returncode == 1
    assert str(failure.value) == "1 message failed; the reason is in the mail log."
    assert out.getvalue() == "0 sent, 1 failed.\n"


# --- the demo -------------------------------------------------------------------------------


def test_the_demo_log_is_dated_up_to_now_so_the_chart_shows_it(admin_client: Client) -> None:
    call_command("loaddemo", verbosity=0)

    rows = MailLog.objects.filter(pk__in=DEMO_ROWS)
    newest = max(row.created_at for row in rows)
    assert timezone.now() - newest < timedelta(minutes=5)
    # The rows keep their spacing (the fixture's sends are 22.5 hours apart).
    assert newest - min(row.created_at for row in rows) == timedelta(hours=22, minutes=30)
    assert all(row.sent_at is None or row.sent_at == row.created_at for row in rows)

    response = admin_client.get(CHANGELIST)
    chart = response.context["mailops_chart"]
    assert (chart.total_sent, chart.total_failed) == (2, 1)
    html = response.content.decode()
    today = timezone.localdate().isoformat()
    assert f'data-day="{today}"' in html
    assert re.search(r'data-sent="[12]"', html)


def test_the_demo_fixture_still_loads_as_is() -> None:
    call_command("loaddata", "demo", verbosity=0)

    assert MailLog.objects.filter(pk__in=DEMO_ROWS).count() == len(DEMO_ROWS)
