"""Password reset end to end: the mail is logged, its token never is.

A user who forgot their password asks for a reset at ``/accounts/``; the
reference project's mailer is the loopback SMTP server. Support can see in
the mail log that the reset mail went out, and nothing in the database or
the admin holds the link that would let them (or anyone) take the account.
"""

from __future__ import annotations

import quopri
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import reverse

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"
RESET_LINK = re.compile(r"https?://[^/\s]+(/accounts/reset/(?P<uid>[^/\s]+)/(?P<token>[^/\s]+)/)")


@pytest.fixture
def site_mail(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    settings.MAILERS = {"default": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()}}
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}
    settings.ALLOWED_HOSTS = ["testserver"]
    return smtp_server


def every_stored_text() -> str:
    """Every text column of every table: where a leaked token would be."""
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            description = connection.introspection.get_table_description(cursor, table)
            columns = [connection.ops.quote_name(c.name) for c in description]
            cursor.execute(f"SELECT {', '.join(columns)} FROM {connection.ops.quote_name(table)}")
            texts.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(texts)


def test_password_reset_is_logged_without_its_token(
    site_mail: LoopbackSMTPServer, make_user: Callable[..., Any], superuser: Any
) -> None:
    make_user("alice", "alice@example.com")
    client = Client()

    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    (received,) = site_mail.wait_for_messages(1)
    body = received.message.get_content()
    link = RESET_LINK.search(body)
    assert link is not None, body
    token = link["token"]
    # The token went out in the mail (quoted-printable may fold it across lines) ...
    assert token in quopri.decodestring(received.data).decode()

    # ... and the log says so, without it.
    row = MailLog.objects.get()
    assert (row.trigger, row.status, row.recipient) == (
        MailTrigger.SITE,
        MailStatus.SENT,
        "alice@example.com",
    )
    assert row.subject == received.message["Subject"]
    assert row.message_id == received.message_id
    assert row.body == ""
    assert token not in every_stored_text()

    # Not in the admin either: the list and the row's page.
    staff = Client()
    staff.force_login(superuser)
    for url in (
        reverse("admin:mailops_maillog_changelist"),
        reverse("admin:mailops_maillog_changelist") + "?trigger__exact=site",
        reverse("admin:mailops_maillog_change", args=[row.pk]),
    ):
        page = staff.get(url)
        assert page.status_code == 200
        assert "alice@example.com" in page.text
        assert token not in page.text

    # The link works: Alice chooses a new password and signs in with it.
    confirm = client.get(link[1], follow=True)
    assert confirm.status_code == 200
    set_password_url = confirm.redirect_chain[-1][0]
    done = client.post(
        set_password_url,
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )
    assert done["Location"] == reverse("password_reset_complete")
    signed_in = Client().post(
        reverse("login"), {"username": "alice", "password": "brand-new-pass-42"}
    )
    assert signed_in["Location"] == reverse("mailops:self_service")


def test_an_ordinary_user_signs_in_and_reaches_the_self_service_page(
    make_user: Callable[..., Any],
) -> None:
    make_user("bob", "bob@example.com")
    client = Client()

    assert client.get(reverse("mailops:self_service"))["Location"] == (
        f"{reverse('login')}?next={reverse('mailops:self_service')}"
    )
    assert "Forgotten your password?" in client.get(reverse("login")).text
    response = client.post(reverse("login"), {"username": "bob", "password": "pw-bob"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("mailops:self_service")
    assert "bob@example.com" in response.text
    signed_out = client.post(reverse("logout"))
    assert "You are signed out." in signed_out.text
    assert get_user_model().objects.get(username="bob").is_staff is False
