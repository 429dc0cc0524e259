"""What the host's people do outside the console: the command, self-service, webhooks."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import include, path

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.commands import run_sendtestmail

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def members(make_member) -> dict[str, Any]:
    return {
        "ada": make_member("ada", "ada@host.example"),
        "ops": make_member("ops", "ops@host.example", is_staff=True),
        "gone": make_member("gone", "gone@host.example", is_staff=True, is_active=False),
        "mute": make_member("mute", "", is_staff=True),
    }


# --- sendtestmail -----------------------------------------------------------------


def test_sendtestmail_user_finds_members_by_handle_or_contact_email(members) -> None:
    code, _, err = run_sendtestmail("--user", "ada", "--user", "OPS@host.example")

    assert (code, err) == (0, "")
    assert sorted(m.to[0] for m in mail.outbox) == ["ada@host.example", "ops@host.example"]
    linked = dict(MailLog.objects.values_list("recipient", "user_id"))
    assert linked == {"ada@host.example": members["ada"].pk, "ops@host.example": members["ops"].pk}


def test_sendtestmail_staff_mails_active_staff_with_an_address(members, monkeypatch) -> None:
    # getpass reads LOGNAME first: who ran the command, as the OS knows them.
    monkeypatch.setenv("LOGNAME", "oncall")

    code, _, _ = run_sendtestmail("--staff")

    assert code == 0
    [row] = MailLog.objects.all()
    assert (row.recipient, row.user_id, row.status) == (
        "ops@host.example",
        members["ops"].pk,
        MailStatus.SENT,
    )
    assert row.trigger == MailTrigger.COMMAND
    assert (row.triggered_by_id, row.triggered_by_name) == (None, "oncall")


def test_sendtestmail_unknown_member_is_a_usage_error(members) -> None:
    code, out, err = run_sendtestmail("--user", "nobody")

    assert code == 2
    assert "no user 'nobody'" in out + err
    assert not mail.outbox


# --- self-service -----------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_the_hosts_own_login() -> None:
    response = Client().get("/mail/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/mail/"


def test_a_member_signs_in_on_the_host_and_sends_themself_a_test_mail(members) -> None:
    client = Client()
    signed_in = client.post(
        "/accounts/login/", {"username": "ada", "password": "pw-ada", "next": "/mail/"}
    )
    assert signed_in["Location"] == "/mail/"

    page = client.get("/mail/")
    assert page.status_code == 200
    assert "<strong>ada@host.example</strong>" in page.content.decode()
    sent = client.post("/mail/", follow=True)

    assert sent.status_code == 200
    assert "A test mail was sent to ada@host.example" in sent.content.decode()
    [message] = mail.outbox
    assert message.to == ["ada@host.example"]
    row = MailLog.objects.get()
    assert (row.trigger, row.triggered_by_id, row.user_id) == (
        MailTrigger.SELF_SERVICE,
        members["ada"].pk,
        members["ada"].pk,
    )


urlpatterns = [path("mail/", include("mailops.urls"))]


@override_settings(ROOT_URLCONF=__name__, LOGIN_URL="/elsewhere/")
def test_self_service_needs_no_admin_site_at_all(members) -> None:
    client = Client()
    client.force_login(members["ada"])

    page = client.get("/mail/")

    assert page.status_code == 200
    assert "Send me a test mail" in page.content.decode()


# --- tracking webhooks -----------------------------------------------------------


def test_a_tracking_webhook_marks_the_members_row_bounced(members) -> None:
    row = MailLog.objects.create(
        recipient="ada@host.example",
        user=members["ada"],
        status=MailStatus.SENT,
        mailer="postmark",
        trigger=MailTrigger.API,
        esp_message_id="8d3f2c1a-0000-4aa5-9d41-5f3f7f7f0001",
    )
    payload = {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": row.esp_message_id,
        "Email": "ada@host.example",
        "BouncedAt": "2026-01-15T10:00:09Z",
        "Description": "Unknown user.",
        "Details": "smtp;550 5.1.1 no such user",
    }
    auth = "Basic " + base64.b64encode(b"hook:hook-pass-host").decode()

    response = Client(enforce_csrf_checks=True).post(
        "/anymail/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    refused = Client().post(
        "/anymail/postmark/tracking/", data=json.dumps(payload), content_type="application/json"
    )

    assert response.status_code == 200
    assert refused.status_code in (401, 403)
    row.refresh_from_db()
    assert (row.status, row.smtp_code) == (MailStatus.BOUNCED, 550)
    assert row.events.get().event_type == "bounced"


# --- the Celery worker's app ------------------------------------------------------


def test_the_celery_app_needs_the_hosts_settings_module_named() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import mailops.task_backends.celery_app"

    bare = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    named = subprocess.run(
        [sys.executable, "-c", code + "; print('ok')"],
        env={**env, "DJANGO_SETTINGS_MODULE": "tests.host.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )

    assert bare.returncode != 0
    assert "Set DJANGO_SETTINGS_MODULE to your project's settings" in bare.stderr
    assert "site_config" not in bare.stderr
    assert (named.returncode, named.stdout) == (0, "ok\n")
