"""Sending through anymail providers, against real HTTP servers on loopback.

Each of Postmark, Mailgun, SendGrid, Brevo and Amazon SES gets the same
story: a success is ``sent`` with the provider's message id; an API error or
a rejected recipient is ``failed`` with the provider's reason and the HTTP
status; and no API key or token shows in the row, the command's output or
the logs, even when the provider quotes it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from mailops.mailers.environ import mailers_from_environ
from mailops.mailers.errors import describe_failure
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.redaction import REDACTED, secret_values
from mailops.services import SendSummary, send_test_mail
from tests.provider_api import ProviderAPI

pytestmark = [
    pytest.mark.django_db,
    # Anymail warns that SendGrid is no longer officially supported (its issue 432).
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

ESPS = ["postmark", "mailgun", "sendgrid", "brevo", "amazon_ses"]
ALIAS = "provider"

# What each provider says when it is down (its 5xx body), and its HTTP status.
OUTAGE = {
    "postmark": ("HTTP 500", "Internal server error"),
    "mailgun": ("HTTP 503", "Service Unavailable: try again later"),
    "sendgrid": ("HTTP 500", "Internal error"),
    "brevo": ("HTTP 500", "Internal server error [code internal_error]"),
    "amazon_ses": ("HTTP 500", "The request processing has failed. [code InternalFailure]"),
}

# How each provider refuses a recipient it will not send to.
REFUSAL = {
    "postmark": ("HTTP 422", "marked as inactive"),
    "mailgun": ("HTTP 400", "to parameter is not a valid address: gone@example.com"),
    "sendgrid": ("HTTP 400", "Does not contain a valid address. (personalizations.0.to.0.email)"),
    "brevo": ("HTTP 400", "email is not valid in to: gone@example.com [code invalid_parameter]"),
    "amazon_ses": ("HTTP 400", "Email address is not verified"),
}

BAD_KEY_STATUS = {
    "postmark": "HTTP 401",
    "mailgun": "HTTP 401",
    "sendgrid": "HTTP 401",
    "brevo": "HTTP 401",
    "amazon_ses": "HTTP 403",
}


@pytest.fixture(params=ESPS)
def api(
    request: pytest.FixtureRequest,
    provider_api_factory: Callable[..., ProviderAPI],
    settings: Any,
) -> ProviderAPI:
    """One provider's API on loopback, configured as the ``provider`` mailer."""
    server = provider_api_factory(request.param)
    settings.MAILERS = {**settings.MAILERS, ALIAS: server.mailer()}
    return server


def send(*addresses: str) -> SendSummary:
    return send_test_mail(from_addresses(list(addresses)), using=ALIAS, trigger=MailTrigger.API)


def test_success_is_sent_with_the_providers_message_id(api: ProviderAPI) -> None:
    summary = send("alice@example.com")

    log = summary.logs().get()
    assert (log.status, log.error, summary.ok) == (MailStatus.SENT, "", True)
    assert log.esp_message_id
    assert api.recipients_sent() == ["alice@example.com"]
    # The id is the provider's (or, for SendGrid, the one anymail sent it).
    (exchange,) = api.sends
    assert exchange.reply is not None
    reply_text = exchange.reply.encoded()[0].decode()
    assert log.esp_message_id in reply_text + exchange.text
    assert log.backend == api.backend


def test_each_message_gets_its_own_provider_id(api: ProviderAPI) -> None:
    summary = send("a@example.com", "b@example.com", "c@example.com")

    logs = list(summary.logs())
    assert [log.status for log in logs] == [MailStatus.SENT] * 3
    assert len({log.esp_message_id for log in logs}) == 3
    assert sorted(api.recipients_sent()) == ["a@example.com", "b@example.com", "c@example.com"]


def test_provider_outage_fails_the_row_with_its_reason_and_http_status(
    api: ProviderAPI, caplog: pytest.LogCaptureFixture
) -> None:
    api.outage = True

    summary = send("alice@example.com")

    log = summary.logs().get()
    status, reason = OUTAGE[api.esp]
    assert log.status == MailStatus.FAILED
    assert status in log.error
    assert reason in log.error
    assert log.error.startswith(f"[{ALIAS}] ")
    assert "try again later" in log.error
    # An HTTP status is not an SMTP reply code.
    assert log.smtp_code is None
    assert (summary.sent, summary.failed, summary.ok) == (0, 1, False)
    assert reason in caplog.text


def test_rejected_recipient_fails_only_that_row(api: ProviderAPI) -> None:
    api.rejected_recipients = {"gone@example.com": "inactive"}

    summary = send("alice@example.com", "gone@example.com", "bob@example.com")

    by_recipient = {log.recipient: log for log in summary.logs()}
    gone = by_recipient.pop("gone@example.com")
    status, reason = REFUSAL[api.esp]
    assert gone.status == MailStatus.FAILED
    assert status in gone.error
    assert reason in gone.error
    assert gone.esp_message_id == ""
    assert {log.status for log in by_recipient.values()} == {MailStatus.SENT}
    assert (summary.sent, summary.failed) == (2, 1)


def test_postmark_invalid_address_is_a_rejected_recipient(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("postmark")
    settings.MAILERS = {ALIAS: api.mailer()}
    api.rejected_recipients = {"typo@example.con": "invalid"}

    summary = send("typo@example.con")

    log = summary.logs().get()
    assert log.status == MailStatus.FAILED
    assert log.error == (
        f"[{ALIAS}] Postmark rejected the recipient (HTTP 422): "
        "Invalid 'To' address: 'typo@example.con'. [code 300]"
    )


@pytest.mark.parametrize("esp", ESPS)
def test_a_key_the_provider_quotes_back_is_never_shown(
    esp: str,
    provider_api_factory: Callable[..., ProviderAPI],
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = provider_api_factory(esp)
    api.echo_key_on_auth_failure = True
    wrong_key = "wrong-key-5f2b9c0e1d7a4c3b"
    settings.MAILERS = {ALIAS: api.mailer(key=wrong_key)}
    presented = api.shape.expected(wrong_key)
    stdout, stderr = StringIO(), StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("sendtestmail", "alice@example.com", using=ALIAS, stdout=stdout, stderr=stderr)

    # The server really did see, and quote back, the key.
    (exchange,) = api.sends
    assert exchange.reply is not None
    assert presented in exchange.reply.encoded()[0].decode()
    log = MailLog.objects.get()
    assert log.status == MailStatus.FAILED
    assert BAD_KEY_STATUS[esp] in log.error
    assert REDACTED in log.error
    assert raised.value.returncode == 1
    shown = [log.error, stdout.getvalue(), stderr.getvalue(), str(raised.value)]
    shown.append("\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mailops")))
    for text in shown:
        assert wrong_key not in text
        assert presented not in text
    # Even third-party DEBUG logs (requests, botocore) never carry the secret.
    # (botocore does log the SES access key id, which AWS treats as public.)
    assert wrong_key not in caplog.text
    assert BAD_KEY_STATUS[esp] in stdout.getvalue()


def test_a_mailer_url_with_the_key_does_not_leak_it_when_sending_fails(
    provider_api_factory: Callable[..., ProviderAPI],
    settings: Any,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    api = provider_api_factory("postmark")
    api.echo_key_on_auth_failure = True
    wrong_token = "pm-token-0a1b2c3d4e5f"
    url = api.mailer_url(key=wrong_token)
    assert wrong_token in url
    env = mailers_from_environ({"MAILER_PROVIDER_URL": url}, outbox_dir=tmp_path)
    settings.MAILERS = {ALIAS: env.mailers["provider"]}
    stdout = StringIO()

    with pytest.raises(CommandError):
        call_command("sendtestmail", "alice@example.com", using=ALIAS, stdout=stdout)

    error = MailLog.objects.get().error
    assert "HTTP 401" in error
    assert "X-Postmark-Server-Token request header was invalid" in error
    for text in (error, stdout.getvalue(), caplog.text):
        assert wrong_token not in text


def test_credentials_in_the_api_url_stay_hidden_when_the_api_is_unreachable(
    settings: Any, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "url-secret-7d6c5b4a"
    settings.MAILERS = {
        ALIAS: {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {
                "server_token": "pm-token-ffeeddcc",
                "api_url": f"http://mailops:{token}@127.0.0.1:{closed_port}/",
                "timeout": 5,
            },
        }
    }

    summary = send("alice@example.com")

    log = summary.logs().get()
    assert log.status == MailStatus.FAILED
    assert log.error == f"[{ALIAS}] cannot reach the Postmark API: connection refused"
    assert token not in caplog.text


@pytest.mark.parametrize("esp", ["postmark", "mailgun", "sendgrid", "brevo"])
def test_anymail_mailer_urls_from_the_environment_send(
    esp: str, provider_api_factory: Callable[..., ProviderAPI], settings: Any, tmp_path: Any
) -> None:
    api = provider_api_factory(esp)
    env = mailers_from_environ({"MAILER_URL": api.mailer_url()}, outbox_dir=tmp_path)
    assert env.mailers["default"]["BACKEND"] == api.backend
    settings.MAILERS = env.mailers

    summary = send_test_mail(from_addresses(["alice@example.com"]), trigger=MailTrigger.API)

    log = summary.logs().get()
    assert (log.mailer, log.status) == ("default", MailStatus.SENT)
    assert log.esp_message_id
    assert api.recipients_sent() == ["alice@example.com"]


def test_amazon_ses_signs_with_the_configured_credentials(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("amazon_ses")
    settings.MAILERS = {ALIAS: api.mailer()}

    send("alice@example.com")

    (exchange,) = api.sends
    authorization = exchange.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=" + api.shape.expected(api.key))
    assert "/eu-west-1/ses/aws4_request" in authorization
    # The secret signs the request; it never travels.
    assert api.key not in exchange.text
    assert api.key not in str(exchange.headers)


def test_command_output_names_the_providers_reason(api: ProviderAPI) -> None:
    api.rejected_recipients = {"gone@example.com": "inactive"}
    stdout = StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("sendtestmail", "gone@example.com", using=ALIAS, stdout=stdout)

    status, reason = REFUSAL[api.esp]
    assert raised.value.returncode == 1
    assert f"failed    gone@example.com: [{ALIAS}]" in stdout.getvalue()
    assert reason in stdout.getvalue()
    assert status in stdout.getvalue()


@pytest.mark.parametrize(
    "option",
    [
        "server_token",
        "api_key",
        "api_token",
        "secret_key",
        "aws_secret_access_key",
        "webhook_signing_key",
        "webhook_secret",
    ],
)
def test_redaction_treats_anymail_key_options_as_secrets(option: str) -> None:
    assert secret_values({option: "value-123456"}) == {"value-123456"}
    assert secret_values({"session_params": {option: "nested-123456"}}) == {"nested-123456"}


def test_redaction_leaves_ordinary_anymail_options_alone() -> None:
    options = {"sender_domain": "mg.example.com", "message_stream": "outbound", "timeout": 5}
    assert secret_values(options) == set()


def test_an_anymail_error_without_a_response_still_reads_well() -> None:
    from anymail.exceptions import AnymailUnsupportedFeature

    failure = describe_failure(
        AnymailUnsupportedFeature("Postmark does not support send_at", esp_name="Postmark"),
        mailer="pm",
    )

    assert failure.reason == "[pm] cannot send through Postmark: Postmark does not support send_at"
    assert (failure.smtp_code, failure.transient) == (None, False)
