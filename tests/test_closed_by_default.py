"""Nothing open by default: tracking webhooks without a secret, the debug page's secrets."""

from __future__ import annotations

import base64
import json
from io import StringIO
from typing import Any

import pytest
from anymail import urls as anymail_urls
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client
from django.urls import reverse

from mailops.models import MailLog, MailStatus
from tests.maillog_fixtures import make_log
from tests.worker_processes import manage

pytestmark = pytest.mark.django_db

SECRET = "anymail:hook-pass-5b7d"
TRACKING = [
    pattern.name
    for pattern in anymail_urls.urlpatterns
    if pattern.name and pattern.name.endswith("tracking_webhook")
]
# Providers that sign their webhooks and whose keys these tests do not set.
UNSIGNED_HERE = {
    "mailersend_tracking_webhook",
    "mailgun_tracking_webhook",
    "postal_tracking_webhook",
    "unisender_go_tracking_webhook",
    "mandrill_tracking_webhook",
}


def auth(credentials: str = SECRET) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def post(name: str, body: str, **headers: str) -> Any:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    return client.post(
        reverse(f"anymail:{name}"), body, content_type="application/json", headers=headers
    )


def postmark_bounce(message_id: str) -> str:
    return json.dumps(
        {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "MessageID": message_id,
            "Email": "someone@example.com",
            "BouncedAt": "2026-01-01T00:00:00Z",
            "Description": "forged by an attacker",
        }
    )


@pytest.fixture
def no_secret(settings: Any) -> None:
    settings.ANYMAIL = {}


@pytest.fixture
def with_secret(settings: Any) -> None:
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


@pytest.mark.parametrize("name", TRACKING)
def test_without_a_secret_every_webhook_refuses(no_secret, name: str) -> None:
    response = post(name, "{}")
    assert response.status_code == 403
    assert b"not configured" in response.content


def test_a_forged_bounce_without_a_secret_changes_nothing(no_secret) -> None:
    row = make_log(status=MailStatus.SENT, esp_message_id="pm-123")

    response = post("postmark_tracking_webhook", postmark_bounce("pm-123"), Authorization=auth())

    assert response.status_code == 403
    row.refresh_from_db()
    assert row.status == MailStatus.SENT
    assert not row.events.exists()


@pytest.mark.parametrize("name", sorted(UNSIGNED_HERE))
def test_a_provider_whose_signing_key_is_missing_is_not_there(with_secret, name: str) -> None:
    response = post(name, "{}", Authorization=auth())
    assert response.status_code == 404


@pytest.mark.parametrize("name", TRACKING)
def test_malformed_json_with_valid_credentials_is_a_client_error(with_secret, name) -> None:
    response = post(name, '{"not json', Authorization=auth())
    expected = 404 if name in UNSIGNED_HERE else 400
    assert response.status_code == expected, response.content
    assert MailLog.objects.count() == 0


def test_wrong_credentials_still_get_401(with_secret) -> None:
    response = post("postmark_tracking_webhook", "{}", Authorization=auth("anymail:wrong"))
    assert response.status_code == 401


def test_check_deploy_fails_when_webhooks_are_mounted_without_a_secret(no_secret) -> None:
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemCheckError, match=r"mailops\.E020"):
        call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=err)


def test_check_deploy_is_quiet_about_webhooks_with_a_secret(with_secret) -> None:
    from mailops.tracking.checks import check_tracking_webhooks

    assert check_tracking_webhooks() == []


MAILER_PASSWORD = "mailer-pass-7f2c"
DATABASE_PASSWORD = "db-pass-19ab"
BROKER_PASSWORD = "broker-pass-0c3d"


def test_the_debug_page_masks_urls_with_passwords_wherever_they_appear(settings) -> None:
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = f"redis://:{BROKER_PASSWORD}@127.0.0.1:6379/0"
    settings.SOME_MAILER = f"smtp+tls://ops%40example.com:{MAILER_PASSWORD}@smtp.example.com"
    client = Client(raise_request_exception=False)

    # What runserver does: the environment is copied into every request's META.
    response = client.get(
        "/admin/",
        HTTP_HOST="attacker.example",
        MAILER_URL=f"smtp+tls://ops%40example.com:{MAILER_PASSWORD}@smtp.example.com:587",
        DATABASE_URL=f"postgres://app:{DATABASE_PASSWORD}@db.internal/app",
        MAILER_API_URL=f"postmark://:{MAILER_PASSWORD}@api?x=1 with spaces",
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert "DisallowedHost" in page
    assert "MAILER_URL" in page
    for secret in (MAILER_PASSWORD, DATABASE_PASSWORD, BROKER_PASSWORD):
        assert secret not in page


def test_the_project_uses_the_masking_filter() -> None:
    completed = manage(
        None,
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEFAULT_EXCEPTION_REPORTER_FILTER)",
    )
    assert completed.stdout.splitlines()[-1] == "mailops.redaction.MailopsExceptionReporterFilter"
