"""The admin "Mailers" page: every alias, its last outcomes, and a connection-check button."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from mailops.models import MailLog, MailStatus, MailTrigger

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SMTP_PASSWORD = "smtp-password-never-shown"
API_KEY = "api-key-never-shown-1234"
WRONG_PASSWORD = "wrong-password-s3cret"

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.mailers_urls")]


@pytest.fixture
def page_url() -> str:
    return reverse("admin:mailops_mailers")


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


def configure(settings: Any, **entries: dict[str, Any]) -> None:
    settings.MAILERS = {**settings.MAILERS, **entries}


def relay(server: Any, **overrides: Any) -> dict[str, Any]:
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": server.options(**overrides)}


def row_html(html: str, alias: str) -> str:
    start = html.index(f'id="mailer-{alias}"')
    # The page may break the dotted backend path at its dots.
    return html[start : html.index("</tr>", start)].replace(".<wbr>", ".")


def test_page_lists_every_mailer_with_its_settings_but_no_secret(
    settings, admin_client, page_url
) -> None:
    configure(
        settings,
        relay={
            "BACKEND": SMTP_BACKEND,
            "OPTIONS": {
                "host": "smtp.example.com",
                "port": 587,
                "use_tls": True,
                "username": "ops@example.com",
                "password": SMTP_PASSWORD,
                "timeout": 10,
            },
        },
        postmark={
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {"server_token": API_KEY},
        },
    )

    response = admin_client.get(page_url)

    assert response.status_code == 200
    html = response.content.decode()
    relay_row = row_html(html, "relay")
    for text in (SMTP_BACKEND, "smtp.example.com", "587", "STARTTLS", "ops@example.com"):
        assert text in relay_row
    assert "Postmark" in row_html(html, "postmark")
    # The alias once ("default", not "default (default)") and what the mailer does.
    assert '<th scope="row">default</th>' in row_html(html, "default")
    assert "locmem (keeps mail in memory)" in row_html(html, "default")
    assert "never checked" in relay_row
    assert "nothing sent yet" in relay_row
    assert SMTP_PASSWORD not in html
    assert API_KEY not in html
    assert '<ol class="breadcrumbs">' in html
    # Not for the locmem mailers (default, outbox): nothing to connect to.
    assert html.count('value="Check connection"') == 2


def test_page_shows_the_last_check_and_last_send_of_each_mailer(
    settings, admin_client, page_url
) -> None:
    configure(settings, relay={"BACKEND": SMTP_BACKEND, "OPTIONS": {"host": "smtp.example.com"}})
    for status, error in [
        (MailStatus.SENT, ""),
        (MailStatus.FAILED, "recipient refused: 550 no such user"),
        (MailStatus.REJECTED, "not an address"),
    ]:
        MailLog.objects.create(
            mailer="default",
            recipient="a@example.com",
            status=status,
            error=error,
            trigger=MailTrigger.COMMAND,
        )
    MailLog.objects.create(
        mailer="relay",
        status=MailStatus.CHECK_FAILED,
        error="connect: connection refused",
        trigger=MailTrigger.CHECK,
    )
    MailLog.objects.create(mailer="outbox", status=MailStatus.CHECKED, trigger=MailTrigger.CHECK)

    html = admin_client.get(page_url).content.decode()

    relay_row = row_html(html, "relay")
    check_cell = relay_row[relay_row.index('class="last-check"') :]
    assert "Connection check failed" in check_cell
    assert "connect: connection refused" in check_cell
    default_row = row_html(html, "default")
    send_cell = default_row[default_row.index('class="last-send"') :]
    # The latest send outcome; a rejected entry was never sent.
    assert "Failed" in send_cell
    assert "550 no such user" in send_cell
    outbox_row = row_html(html, "outbox")
    # A local mailer has no connection whose check could be shown.
    assert "nothing to connect to" in outbox_row
    assert "nothing sent yet" in outbox_row


def test_check_button_runs_the_check_logs_it_and_reports(
    settings, admin_client, superuser, page_url, smtp_server
) -> None:
    configure(settings, relay=relay(smtp_server))

    response = admin_client.post(page_url, {"alias": "relay"}, follow=True)

    assert response.redirect_chain == [(page_url, 302)]
    log = MailLog.objects.get()
    assert log.status == MailStatus.CHECKED
    assert (log.mailer, log.trigger, log.triggered_by) == ("relay", MailTrigger.CHECK, superuser)
    assert smtp_server.messages == []
    html = response.content.decode()
    assert "Connection check passed: relay: smtp 127.0.0.1:" in html
    assert "authenticated as mailops" in html
    assert "Connection checked" in row_html(html, "relay")
    assert smtp_server.password not in html


def test_failed_check_is_reported_without_the_password(
    settings, admin_client, page_url, smtp_server
) -> None:
    smtp_server.echo_credentials_on_auth_failure = True
    configure(settings, relay=relay(smtp_server, password=WRONG_PASSWORD))

    response = admin_client.post(page_url, {"alias": "relay"}, follow=True)

    html = response.content.decode()
    assert "Connection check failed: relay:" in html
    assert "535 5.7.8" in html
    assert WRONG_PASSWORD not in html
    log = MailLog.objects.get()
    assert (log.status, log.smtp_code) == (MailStatus.CHECK_FAILED, 535)


def test_provider_without_a_probe_is_a_warning_not_a_success_and_not_logged(
    settings, admin_client, page_url
) -> None:
    # Providers with a probe are checked through their API: tests/test_provider_checks.py.
    configure(
        settings,
        mailjet={
            "BACKEND": "anymail.backends.mailjet.EmailBackend",
            "OPTIONS": {"api_key": "mailjet-public-key", "secret_key": API_KEY},
        },
    )

    html = admin_client.post(page_url, {"alias": "mailjet"}, follow=True).content.decode()

    assert "Connection not verified: mailjet: anymail Mailjet, " in html
    assert "connection check not supported for Mailjet: send a test mail instead" in html
    assert "cannot be checked: send a test mail" in row_html(html, "mailjet")
    assert not MailLog.objects.exists()
    assert API_KEY not in html


def test_unknown_alias_is_reported_and_logs_nothing(admin_client, page_url) -> None:
    html = admin_client.post(page_url, {"alias": "nope"}, follow=True).content.decode()

    assert "There is no mailer &#x27;nope&#x27; to check." in html
    assert not MailLog.objects.exists()


def test_checking_needs_the_send_test_mail_permission(
    settings, client, make_user, page_url, smtp_server
) -> None:
    configure(settings, relay=relay(smtp_server))
    reader = make_user("reader", perms=("mailops.view_maillog",), is_staff=True)
    client.force_login(reader)

    page = client.get(page_url)
    posted = client.post(page_url, {"alias": "relay"})

    assert page.status_code == 200
    assert "relay" in page.content.decode()
    assert 'value="Check connection"' not in page.content.decode()
    assert posted.status_code == 403
    assert not MailLog.objects.exists()
    assert smtp_server.connections == 0


def test_sender_may_check(settings, client, make_user, page_url, smtp_server) -> None:
    configure(settings, relay=relay(smtp_server))
    sender = make_user("sender", perms=("mailops.send_test_mail",), is_staff=True)
    client.force_login(sender)

    response = client.post(page_url, {"alias": "relay"})

    assert response.status_code == 302
    assert MailLog.objects.get().triggered_by == sender


def test_staff_without_mail_permissions_cannot_see_the_page(client, make_user, page_url) -> None:
    client.force_login(make_user("staff", is_staff=True))

    assert client.get(page_url).status_code == 403
    assert client.post(page_url, {"alias": "default"}).status_code == 403
    assert not MailLog.objects.exists()


def test_anonymous_users_are_sent_to_the_login_page(client, page_url) -> None:
    response = client.get(page_url)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_check_button_needs_a_csrf_token(superuser, page_url) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)

    response = client.post(page_url, {"alias": "default"})

    assert response.status_code == 403
    assert not MailLog.objects.exists()
