"""Site mail through anymail providers: provider ids on the rows, webhooks updating them.

The providers' APIs are real HTTP servers on loopback (``tests/provider_api.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.core import mail
from django.test import Client

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.provider_api import ProviderAPI, provider_api_factory

__all__ = ["provider_api_factory"]

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

ESPS = ["postmark", "mailgun", "sendgrid", "brevo", "amazon_ses"]
WEBHOOK_USER, WEBHOOK_PASSWORD = "anymail", "hook-pass-5d2e8b"


@pytest.fixture
def provider(
    request: pytest.FixtureRequest, provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> ProviderAPI:
    """The site's default mailer is a provider on loopback; auditing is on."""
    esp = getattr(request, "param", "postmark")
    api = provider_api_factory(esp)
    settings.MAILERS = {"default": api.mailer()}
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}
    settings.ANYMAIL = {"WEBHOOK_SECRET": f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}"}
    return api


@pytest.mark.parametrize("provider", ESPS, indirect=True)
def test_site_mail_rows_carry_the_providers_message_id(provider: ProviderAPI) -> None:
    assert mail.send_mail("Welcome", "Hello", None, ["alice@example.com"]) == 1

    row = MailLog.objects.get()
    assert (row.status, row.trigger, row.mailer) == (MailStatus.SENT, MailTrigger.SITE, "default")
    assert row.esp_message_id
    (exchange,) = provider.sends
    assert exchange.reply is not None
    assert row.esp_message_id in exchange.reply.encoded()[0].decode() + exchange.text
    assert row.backend == provider.backend
    assert row.message_id.startswith("<")


def test_a_recipient_the_provider_refuses_is_failed_and_the_error_still_raised(
    provider: ProviderAPI,
) -> None:
    provider.rejected_recipients = {"gone@example.com": "inactive"}

    with pytest.raises(AnymailRecipientsRefused):
        mail.send_mail("Welcome", "Hello", None, ["gone@example.com"])

    row = MailLog.objects.get()
    assert row.status == MailStatus.FAILED
    assert row.error == "[default] Postmark rejected this recipient"
    assert row.esp_message_id == ""


def test_a_provider_outage_fails_the_rows_with_its_reason(provider: ProviderAPI) -> None:
    provider.outage = True

    with pytest.raises(AnymailAPIError):
        mail.send_mail("Welcome", "Hello", None, ["alice@example.com", "bob@example.com"])

    rows = list(MailLog.objects.all())
    assert len(rows) == 2
    for row in rows:
        assert row.status == MailStatus.FAILED
        assert "HTTP 500" in row.error
        assert provider.key not in row.error


def test_tracking_webhooks_update_site_rows(provider: ProviderAPI) -> None:
    mail.send_mail("Welcome", "Hello", None, ["alice@example.com", "bob@example.com"])
    rows = {row.recipient: row for row in MailLog.objects.all()}
    bob = rows["bob@example.com"]
    assert bob.esp_message_id
    # The Message-ID the rows name is the one the provider was asked to send.
    assert bob.message_id in provider.sends[0].text

    auth = base64.b64encode(f"{WEBHOOK_USER}:{WEBHOOK_PASSWORD}".encode()).decode()
    response = Client().post(
        "/anymail/postmark/tracking/",
        data=json.dumps(
            {
                "RecordType": "Delivery",
                "MessageID": bob.esp_message_id,
                "Recipient": "bob@example.com",
                "DeliveredAt": "2026-01-15T10:00:05Z",
                "Details": "smtp;250 2.0.0 OK",
                "Metadata": {},
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )

    assert response.status_code == 200
    statuses = dict(MailLog.objects.values_list("recipient", "status"))
    assert statuses == {"alice@example.com": MailStatus.SENT, "bob@example.com": "delivered"}
    assert MailLog.objects.get(recipient="bob@example.com").events.get().event_type == "delivered"
