"""`sendtestmail --check` and the Mailers page button for anymail providers.

Each of Postmark, Mailgun, SendGrid, Brevo and Amazon SES is checked against
its loopback API from tests/provider_api.py: the check makes one read-only,
authenticated call with the mailer's own key (never a send), logs ``checked``
or ``check_failed``, and never shows the key, even when the provider quotes
it back. A provider mailops has no probe for is reported, not failed.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from mailops.mailers.connection import CheckOutcome, verify_connection
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.redaction import REDACTED
from tests.commands import all_columns
from tests.commands import run_sendtestmail as run
from tests.provider_api import ProviderAPI
from tests.provider_shapes import Reply

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.mailers_urls"),
    # Anymail warns that SendGrid is no longer officially supported (its issue 432).
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

ESPS = ["postmark", "mailgun", "sendgrid", "brevo", "amazon_ses"]
ALIAS = "provider"
WRONG_KEY = "wrong-key-5f2b9c0e1d7a4c3b"
MAILJET_SECRET = "mailjet-secret-9a8b7c6d5e"

NAMES = {
    "postmark": "Postmark",
    "mailgun": "Mailgun",
    "sendgrid": "SendGrid",
    "brevo": "Brevo",
    "amazon_ses": "Amazon SES",
}

# What the check says on success: the API it reached, and what it read there.
AUTHENTICATED = {
    "postmark": "authenticated with the Postmark API (server 'Staging Testing')",
    "mailgun": "authenticated with the Mailgun API (domain 'example.com', active)",
    "sendgrid": "authenticated with the SendGrid API (key may send mail)",
    "brevo": "authenticated with the Brevo API (account 'Example Ltd')",
    "amazon_ses": "authenticated with the Amazon SES API "
    "(eu-west-1, production access, 12 of 50000 sent in 24 h)",
}

# The call it makes (logged in the row's body).
API_CALL = {
    "postmark": "GET /server at 127.0.0.1:{port} (http)",
    "mailgun": "GET /v4/domains/example.com at 127.0.0.1:{port} (http)",
    "sendgrid": "GET /v3/scopes at 127.0.0.1:{port} (http)",
    "brevo": "GET /v3/account at 127.0.0.1:{port} (http)",
    "amazon_ses": "SES v2 GetAccount (eu-west-1)",
}

# How each provider refuses a wrong key, and its reason (with the echoed key masked).
REFUSED = {
    "postmark": (
        "HTTP 401",
        f"The Server Token you provided ('{REDACTED}') in the X-Postmark-Server-Token "
        "request header was invalid. Please verify that you are using a valid token. [code 10]",
    ),
    "mailgun": ("HTTP 401", f"Invalid private key: {REDACTED} (hint: the check needs an account"),
    "sendgrid": (
        "HTTP 401",
        f"The provided authorization grant is invalid, expired, or revoked: Bearer {REDACTED}",
    ),
    "brevo": ("HTTP 401", f"Key not found: {REDACTED} [code unauthorized]"),
    "amazon_ses": (
        "HTTP 403",
        "The security token included in the request is invalid. "
        f"(access key {REDACTED}) [code UnrecognizedClientException]",
    ),
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


@pytest.fixture
def page_url() -> str:
    return reverse("admin:mailops_mailers")


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def only_log() -> MailLog:
    logs = list(MailLog.objects.all())
    assert len(logs) == 1, logs
    return logs[0]


def test_check_authenticates_with_the_providers_api_and_sends_nothing(api: ProviderAPI) -> None:
    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 0, out
    assert out == f"ok          {ALIAS}: anymail {NAMES[api.esp]}, {AUTHENTICATED[api.esp]}\n"
    assert len(api.probes) == 1
    assert api.sends == [], "a check must not send"
    log = only_log()
    assert log.status == MailStatus.CHECKED
    assert (log.mailer, log.backend, log.trigger) == (ALIAS, api.backend, MailTrigger.CHECK)
    assert (log.recipient, log.error, log.smtp_code) == ("", "", None)
    assert log.subject == f"Connection check: anymail {NAMES[api.esp]}, {AUTHENTICATED[api.esp]}"
    assert API_CALL[api.esp].format(port=api.port) + " -> HTTP 200" in log.body
    # Postmark's answer lists the server's tokens: none of it is stored.
    assert api.key not in all_columns(log)


def test_check_presents_the_key_the_way_sending_does(api: ProviderAPI) -> None:
    run("--check", "--using", ALIAS)

    (probe,) = api.probes
    assert api.shape.presented_key(probe) == api.shape.expected(api.key)


def test_bad_credentials_fail_the_check_with_the_providers_reason_and_never_the_key(
    api: ProviderAPI, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The provider quotes the presented key back, as some do.
    api.echo_key_on_auth_failure = True
    settings.MAILERS = {**settings.MAILERS, ALIAS: api.mailer(key=WRONG_KEY)}
    presented = api.shape.expected(WRONG_KEY)

    code, out, err = run("--check", "--using", ALIAS)

    assert code == 1
    status, reason = REFUSED[api.esp]
    assert out.startswith(
        f"FAILED      {ALIAS}: anymail {NAMES[api.esp]}, "
        f"API: {NAMES[api.esp]} refused the credentials ({status}): "
    )
    assert reason in out
    assert f"did not pass: {ALIAS}." in err
    (probe,) = api.probes
    assert probe.reply is not None
    assert presented in probe.reply.encoded()[0].decode(), "the server did quote the key"
    log = only_log()
    assert log.status == MailStatus.CHECK_FAILED
    assert log.error.startswith(f"API: {NAMES[api.esp]} refused the credentials ({status})")
    assert reason in log.error
    assert log.smtp_code is None, "an HTTP status is not an SMTP reply code"
    for text in (out, err, all_columns(log)):
        assert WRONG_KEY not in text
        assert presented not in text
    # Not even third-party DEBUG logs carry the secret (botocore does log the
    # SES access key id, which AWS treats as public).
    assert WRONG_KEY not in caplog.text
    assert api.sends == []


def test_unreachable_api_fails_the_check(api: ProviderAPI) -> None:
    api.stop()

    code, out, _ = run("--check", "--using", ALIAS, "--json")

    assert code == 1
    (result,) = json.loads(out)["mailers"]
    expected = (
        f"unreachable: cannot reach the {NAMES[api.esp]} API at 127.0.0.1:{api.port} "
        "(connection refused)"
    )
    assert (result["outcome"], result["error"]) == (CheckOutcome.FAILED, expected)
    assert (result["reachable"], result["authenticated"], result["http_status"]) == (
        False,
        None,
        None,
    )
    log = only_log()
    assert (log.status, log.error) == (MailStatus.CHECK_FAILED, expected)


def test_check_button_verifies_the_provider_and_logs_who_asked(
    api: ProviderAPI, admin_client: Client, superuser: Any, page_url: str
) -> None:
    response = admin_client.post(page_url, {"alias": ALIAS}, follow=True)

    assert response.redirect_chain == [(page_url, 302)]
    html = response.content.decode()
    summary = f"anymail {NAMES[api.esp]}, {AUTHENTICATED[api.esp]}".replace("'", "&#x27;")
    assert f"Connection check passed: {ALIAS}: {summary}" in html
    log = only_log()
    assert (log.status, log.triggered_by) == (MailStatus.CHECKED, superuser)
    assert "Connection checked" in html[html.index(f'id="mailer-{ALIAS}"') :]
    assert api.key not in html
    assert api.sends == []


def test_check_button_reports_bad_credentials_without_the_key(
    api: ProviderAPI, settings: Any, admin_client: Client, page_url: str
) -> None:
    api.echo_key_on_auth_failure = True
    settings.MAILERS = {**settings.MAILERS, ALIAS: api.mailer(key=WRONG_KEY)}

    html = admin_client.post(page_url, {"alias": ALIAS}, follow=True).content.decode()

    status, _ = REFUSED[api.esp]
    assert f"Connection check failed: {ALIAS}: anymail {NAMES[api.esp]}, " in html
    assert f"refused the credentials ({status})" in html
    assert only_log().status == MailStatus.CHECK_FAILED
    assert WRONG_KEY not in html
    assert api.shape.expected(WRONG_KEY) not in html


def test_provider_outage_is_a_failed_check_that_says_try_again(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("postmark")
    api.outage = True
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert (
        "API: Postmark had a problem (HTTP 500): Internal server error [code 500]; "
        "try again later" in out
    )
    assert only_log().status == MailStatus.CHECK_FAILED


def test_redirect_is_not_followed_with_the_key(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("postmark")
    api.probe_reply = Reply(302, None, {"Location": "https://elsewhere.example/server"})
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert (
        "API: unexpected redirect (HTTP 302) to elsewhere.example: check the api_url option" in out
    )
    assert len(api.requests) == 1, "the key went nowhere else"


def test_a_2xx_that_is_not_the_providers_answer_is_not_a_pass(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    # An api_url pointing at some other web server answers 200 with a page.
    api = provider_api_factory("postmark")
    api.probe_reply = Reply(200, "<html>Welcome</html>")
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert "API: the answer is not Postmark's server details (HTTP 200): check api_url" in out
    assert only_log().status == MailStatus.CHECK_FAILED


def test_an_api_that_never_answers_times_out_with_the_mailers_timeout(
    settings: Any, silent_port: int
) -> None:
    settings.MAILERS = {
        ALIAS: {
            "BACKEND": "anymail.backends.postmark.EmailBackend",
            "OPTIONS": {
                "server_token": "pm-token-0a1b2c3d",
                "api_url": f"http://127.0.0.1:{silent_port}/",
                "timeout": 0.5,
            },
        }
    }

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert (
        f"unreachable: the Postmark API at 127.0.0.1:{silent_port} did not answer within 0.5s"
        in out
    )
    assert only_log().status == MailStatus.CHECK_FAILED


def test_credentials_in_the_api_url_stay_hidden_when_it_is_unreachable(
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
            },
        }
    }

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert f"cannot reach the Postmark API at 127.0.0.1:{closed_port} (connection refused)" in out
    for text in (out, all_columns(only_log()), caplog.text):
        assert token not in text


def test_key_from_the_anymail_setting_is_the_one_checked(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("brevo")
    settings.ANYMAIL = {"BREVO_API_KEY": api.key, "BREVO_API_URL": api.url + "v3/"}
    settings.MAILERS = {ALIAS: {"BACKEND": api.backend}}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 0, out
    assert "authenticated with the Brevo API" in out
    assert api.key not in all_columns(only_log())


def test_mailgun_checks_the_configured_sender_domain(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("mailgun")
    settings.MAILERS = {ALIAS: api.mailer(sender_domain="mg.example.org")}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 0, out
    assert [probe.path for probe in api.probes] == ["/v4/domains/mg.example.org"]
    assert "(domain 'mg.example.org', active)" in out


def test_mailgun_without_sender_domain_checks_the_from_address_domain(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("mailgun")
    settings.MAILERS = {ALIAS: api.mailer()}
    settings.MAILOPS = {**settings.MAILOPS, "FROM_EMAILS": {ALIAS: "Ops <ops@mail.example.net>"}}

    run("--check", "--using", ALIAS)

    assert [probe.path for probe in api.probes] == ["/v4/domains/mail.example.net"]


def test_mailgun_unknown_sender_domain_fails_with_a_hint(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("mailgun")
    api.probe_reply = api.shape.domain_not_found()  # type: ignore[attr-defined]
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 1
    assert "API: Mailgun answered HTTP 404: Domain not found (hint: Mailgun does not know" in out
    assert "https://api.eu.mailgun.net/v3/" in out
    log = only_log()
    assert log.status == MailStatus.CHECK_FAILED


def test_sendgrid_key_without_mail_send_fails_the_check(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("sendgrid")
    api.probe_reply = api.shape.restricted_scopes()  # type: ignore[attr-defined]
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS, "--json")

    assert code == 1
    (result,) = json.loads(out)["mailers"]
    assert result["error"] == (
        "API: the API key is valid but lacks the mail.send permission (HTTP 200)"
    )
    assert (result["reachable"], result["authenticated"]) == (True, True)
    assert only_log().status == MailStatus.CHECK_FAILED


def test_ses_identity_that_may_only_send_passes_with_a_warning(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("amazon_ses")
    api.probe_reply = api.shape.access_denied()  # type: ignore[attr-defined]
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 0, out
    assert "authenticated with the Amazon SES API (credentials accepted)" in out
    assert "warning: the IAM identity may not call ses:GetAccount" in out
    log = only_log()
    assert log.status == MailStatus.CHECKED
    assert "Warning: the IAM identity may not call ses:GetAccount" in log.body


def test_ses_sandbox_account_passes_with_a_warning(
    provider_api_factory: Callable[..., ProviderAPI], settings: Any
) -> None:
    api = provider_api_factory("amazon_ses")
    api.probe_reply = api.shape.sandbox_account()  # type: ignore[attr-defined]
    settings.MAILERS = {ALIAS: api.mailer()}

    code, out, _ = run("--check", "--using", ALIAS)

    assert code == 0, out
    assert "(eu-west-1, sandbox, 0 of 200 sent in 24 h)" in out
    assert "warning: the account is in the SES sandbox in eu-west-1" in out


def mailjet(settings: Any) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "mailjet": {
            "BACKEND": "anymail.backends.mailjet.EmailBackend",
            "OPTIONS": {"api_key": "mailjet-public-key", "secret_key": MAILJET_SECRET},
        },
    }


def test_provider_without_a_probe_is_reported_not_failed_and_not_logged(settings: Any) -> None:
    mailjet(settings)

    code, out, err = run("--check", "--using", "mailjet")

    assert code == 0
    assert out == (
        "unverified  mailjet: anymail Mailjet, connection check not supported for Mailjet: "
        "send a test mail instead (sendtestmail ADDRESS --using mailjet)\n"
    )
    # Nothing was verified, so the log must not say when it last was.
    assert not MailLog.objects.exists()
    assert MAILJET_SECRET not in out + err


def test_all_mailers_with_an_unsupported_provider_exits_zero(
    api: ProviderAPI, settings: Any
) -> None:
    mailjet(settings)

    code, out, _ = run("--check", "--all-mailers", "--json")

    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    outcomes = {item["alias"]: (item["outcome"], item["ok"]) for item in payload["mailers"]}
    assert outcomes == {
        "default": (CheckOutcome.LOCAL, False),
        "outbox": (CheckOutcome.LOCAL, False),
        ALIAS: (CheckOutcome.PASSED, True),
        "mailjet": (CheckOutcome.UNSUPPORTED, False),
    }
    # Only the provider's API was verified: the local mailers log no check.
    assert set(MailLog.objects.values_list("mailer", "status")) == {(ALIAS, MailStatus.CHECKED)}


def test_service_result_describes_the_api_call(api: ProviderAPI) -> None:
    result = verify_connection(ALIAS)

    assert result.ok
    assert result.api_call == API_CALL[api.esp].format(port=api.port)
    assert (result.http_status, result.reachable, result.authenticated) == (200, True, True)
    assert MailLog.objects.get(pk=result.log_id).status == MailStatus.CHECKED
