"""Self-service: a signed-in user presses "Send me a test mail" and gets one, within limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.admin_fixtures import shown_messages

pytestmark = pytest.mark.django_db

URL = "/mail/"


@pytest.fixture
def member(make_user) -> Any:
    return make_user("member", "member@example.com")


@pytest.fixture
def member_client(client, member) -> Client:
    client.force_login(member)
    return client


def press_send(client: Client) -> Any:
    return client.post(URL, follow=True)


def test_the_page_is_mounted_at_mail() -> None:
    assert reverse("mailops:self_service") == URL


def test_signed_out_visitors_are_sent_to_the_login_page(client) -> None:
    for response in (client.get(URL), client.post(URL)):
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={URL}"
    assert not MailLog.objects.exists()


def test_get_shows_the_page_and_sends_nothing(member_client) -> None:
    response = member_client.get(URL)

    assert response.status_code == 200
    assert "mailops/self_service.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "<strong>member@example.com</strong>" in html
    assert "You can send 5 test mails per hour; 5 left now." in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert "You have not sent a test mail yet." in html
    assert not MailLog.objects.exists()
    assert mail.outbox == []


def test_pressing_the_button_sends_to_my_address_over_smtp_and_logs_it(
    settings, smtp_server, member, member_client
) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": smtp_server.options(),
        }
    }

    response = press_send(member_client)

    assert response.redirect_chain == [(URL, 302)]
    [received] = smtp_server.wait_for_messages(1)
    assert received.rcpt_tos == ["member@example.com"]
    row = MailLog.objects.get()
    assert (row.trigger, row.triggered_by, row.user, row.status, row.mailer) == (
        MailTrigger.SELF_SERVICE,
        member,
        member,
        MailStatus.SENT,
        "default",
    )
    assert row.message_id == received.message_id
    [(level, text)] = shown_messages(response)
    assert level == "success"
    assert text.startswith("A test mail was sent to member@example.com.")
    # The page now lists the result.
    recent = response.context["recent"]
    assert [log.pk for log in recent] == [row.pk]
    assert "You can send 5 test mails per hour; 4 left now." in response.content.decode()


def test_the_sixth_send_within_the_hour_is_refused_with_a_friendly_message(
    member_client,
) -> None:
    for _ in range(5):
        assert shown_messages(press_send(member_client))[0][0] == "success"

    response = press_send(member_client)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "warning"
    assert text.startswith(
        "You have already sent 5 test mails in the last hour, the most allowed. "
        "You can send the next one in "
    )
    # The refusal is logged too, as a rejected row that sent nothing.
    assert MailLog.objects.exclude(status="rejected").count() == 5
    refusal = MailLog.objects.get(status="rejected")
    assert (refusal.trigger, refusal.recipient) == ("self_service", "member@example.com")
    assert refusal.error == "self-service limit reached: 5 of 5 test mails in the last 3600 s"
    assert len(mail.outbox) == 5
    assert response.context["can_send"] is False
    assert "disabled" in response.content.decode()


def test_the_limit_is_counted_from_the_log_per_user_and_window(
    settings, member, member_client, make_user
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "SELF_SERVICE_LIMIT": 2, "SELF_SERVICE_WINDOW": 600}
    press_send(member_client)
    press_send(member_client)
    assert shown_messages(press_send(member_client))[0][0] == "warning"
    assert MailLog.objects.status_counts() == {"sent": 2, "rejected": 1}

    # Another user's sends do not count against this one.
    other = make_user("other", "other@example.com")
    other_client = Client()
    other_client.force_login(other)
    assert shown_messages(press_send(other_client))[0][0] == "success"

    # Once the member's rows are older than the window, sending works again:
    # the count comes from the log, so it survives restarts and spans processes.
    MailLog.objects.filter(triggered_by=member).update(
        created_at=timezone.now() - timedelta(seconds=601)
    )
    assert shown_messages(press_send(member_client))[0][0] == "success"
    assert MailLog.objects.filter(triggered_by=member).status_counts() == {
        "sent": 3,
        "rejected": 1,
    }


def test_users_without_an_address_are_told_so_and_nothing_is_logged(client, make_user) -> None:
    client.force_login(make_user("noaddress", ""))

    page = client.get(URL)
    assert "Your account has no email address" in page.content.decode()
    assert page.context["can_send"] is False

    response = press_send(client)

    [(level, text)] = shown_messages(response)
    assert level == "warning"
    assert text.startswith("Your account has no email address, so there is nowhere to send")
    assert not MailLog.objects.exists()
    assert mail.outbox == []


def test_an_invalid_address_is_logged_rejected_and_explained(client, make_user) -> None:
    user = make_user("typo", "typo-at-example.com")
    client.force_login(user)

    response = press_send(client)

    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert "typo-at-example.com is not valid" in text
    row = MailLog.objects.get()
    assert (row.status, row.user, row.trigger) == (MailStatus.REJECTED, user, "self_service")


def test_mailer_down_is_a_message_and_a_failed_row_not_an_error_page(
    settings, closed_port, member_client
) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": closed_port, "timeout": 5},
        }
    }

    response = press_send(member_client)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert "could not be sent" in text
    assert MailLog.objects.get().status == MailStatus.FAILED
    assert "not delivered" in response.content.decode()


def test_misconfigured_default_mailer_is_a_message_not_an_error_page(
    settings, member_client
) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "DEFAULT_MAILER": "nosuchmailer"}

    response = press_send(member_client)

    assert response.status_code == 200
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert "not set up correctly" in text
    assert "nosuchmailer" not in text  # configuration details stay in the server log
    assert not MailLog.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(member) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)

    assert client.post(URL).status_code == 403
    assert not MailLog.objects.exists()


def test_other_methods_are_not_allowed(member_client) -> None:
    assert member_client.put(URL).status_code == 405
    assert member_client.delete(URL).status_code == 405
    assert not MailLog.objects.exists()


def test_the_admin_header_links_staff_to_the_page(client, make_user) -> None:
    staff = make_user("staffer", "staffer@example.com", is_staff=True)
    client.force_login(staff)

    page = client.get(reverse("admin:index"))

    assert page.status_code == 200
    assert f'<a href="{URL}">Send me a test mail</a>' in page.content.decode()
    title = "<title>Mail operations and site administration | mailops</title>"
    assert title in page.content.decode()
