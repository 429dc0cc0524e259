"""anymail+<provider>:// names any provider the installed anymail ships; errors say what works."""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from collections.abc import Callable
from urllib.parse import urlencode

import anymail.backends
import pytest
from anymail.backends.base import AnymailBaseBackend
from django.core.mail import mailers

from mailops.mailers.anymail_providers import installed_providers, url_name
from mailops.mailers.environ import MailerURLError, mailers_from_environ, parse_mailer_url
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.provider_api import ProviderAPI

# One working URL per provider module of the pinned anymail (15.2): the
# options each one cannot do without. The reference page of mailer URLs
# shows the same forms.
PROVIDER_URLS = {
    "amazon_ses": "anymail+amazonses://?region_name=eu-west-1",
    "brevo": "anymail+brevo://?api_key=xkeysib-123",
    "console": "anymail+console://",
    "mailersend": "anymail+mailersend://?api_token=mlsn.123",
    "mailgun": "anymail+mailgun://?api_key=key-123&sender_domain=mg.example.com",
    "mailjet": "anymail+mailjet://?api_key=k123&secret_key=s123",
    "mailtrap": "anymail+mailtrap://?api_token=t123",
    "mandrill": "anymail+mandrill://?api_key=md-123",
    "postal": "anymail+postal://?api_key=p123&api_url=https://postal.example.com",
    "postmark": "anymail+postmark://?server_token=t123",
    "resend": "anymail+resend://?api_key=re_123",
    "scaleway": "anymail+scaleway://?secret_key=s123&project_id=p123",
    "sendgrid": "anymail+sendgrid://?api_key=SG.123",
    "sendinblue": "anymail+sendinblue://?api_key=xkeysib-123",
    "sparkpost": "anymail+sparkpost://?api_key=sp123",
    "test": "anymail+test://",
    "unisender_go": (
        "anymail+unisendergo://?api_key=u123"
        "&api_url=https://go1.unisender.ru/ru/transactional/api/v1/"
    ),
}


def build(settings, url: str) -> object:
    """The backend Django builds from the MAILERS entry ``url`` becomes."""
    entry, _from = parse_mailer_url(url, variable="MAILER_URL")
    settings.MAILERS = {"default": entry}
    settings.ANYMAIL = {}
    with warnings.catch_warnings():
        # anymail warns on building SendGrid (no longer supported) and Sendinblue (renamed).
        warnings.simplefilter("ignore")
        return mailers["default"]


def test_the_provider_list_is_every_anymail_module_with_an_email_backend() -> None:
    with_backend = set()
    for module in pkgutil.iter_modules(anymail.backends.__path__):
        try:
            loaded = importlib.import_module(f"anymail.backends.{module.name}")
        except ImportError:  # pragma: no cover - every extra is installed here
            continue
        backend = getattr(loaded, "EmailBackend", None)
        if isinstance(backend, type) and issubclass(backend, AnymailBaseBackend):
            with_backend.add(module.name)
    assert set(installed_providers()) == with_backend
    assert {"mailtrap", "scaleway", "amazon_ses"} <= with_backend


def test_every_installed_provider_has_a_url_here() -> None:
    # A newer anymail with a new provider: add its URL above and on the docs page.
    assert sorted(PROVIDER_URLS) == list(installed_providers())


@pytest.mark.parametrize("provider", sorted(PROVIDER_URLS))
def test_every_installed_provider_builds_a_mailer_from_its_url(settings, provider: str) -> None:
    backend = build(settings, PROVIDER_URLS[provider])
    assert type(backend).__module__ == f"anymail.backends.{provider}"
    assert isinstance(backend, AnymailBaseBackend)


def test_mailtrap_builds_with_its_token(settings) -> None:
    backend = build(settings, "anymail+mailtrap://?api_token=t0k3n")
    assert backend.esp_name == "Mailtrap"
    assert backend.api_token == "t0k3n"


@pytest.mark.parametrize(
    "url",
    [
        "anymail+amazon-ses://?region_name=eu-west-1",
        "anymail+amazonses://?region_name=eu-west-1",
        "ANYMAIL+AMAZON-SES://?region_name=eu-west-1",
        "anymail+ses://?region_name=eu-west-1",
    ],
)
def test_amazon_ses_is_written_without_underscore_and_takes_its_region(settings, url: str) -> None:
    backend = build(settings, url)
    assert backend.esp_name == "Amazon SES"
    # boto3's session parameters: the connection check and sending both read them.
    assert backend.session_params == {"region_name": "eu-west-1"}


def test_a_dash_stands_for_the_underscore_of_any_module_name(settings) -> None:
    url = PROVIDER_URLS["unisender_go"].replace("unisendergo", "unisender-go")
    assert build(settings, url).esp_name == "Unisender Go"


def test_amazon_ses_with_underscore_names_the_forms_that_work(tmp_path) -> None:
    with pytest.raises(MailerURLError) as caught:
        mailers_from_environ(
            {"MAILER_URL": "anymail+amazon_ses://?region_name=eu-west-1&hunter22"},
            outbox_dir=tmp_path,
        )
    assert str(caught.value) == (
        "MAILER_URL: a URL scheme cannot contain '_': write anymail+amazonses:// "
        "(or anymail+amazon-ses://) for 'amazon_ses'"
    )


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("anymail+pigeon://?api_key=hunter22", "'pigeon'"),
        ("anymail+carrier_pigeon://?api_key=hunter22", "'carrier_pigeon'"),
        ("anymail+://?api_key=hunter22", "''"),
    ],
)
def test_an_unknown_provider_lists_the_installed_ones(url: str, name: str) -> None:
    with pytest.raises(MailerURLError) as caught:
        parse_mailer_url(url, variable="MAILER_BACKUP_URL")
    text = str(caught.value)
    assert text.startswith("MAILER_BACKUP_URL: ")
    assert name in text
    listed = text.rpartition("the installed django-anymail has: ")[2]
    assert listed.split(", ") == [url_name(provider) for provider in installed_providers()]
    assert "mailtrap" in listed
    assert "amazonses" in listed
    assert "hunter22" not in text


def test_provider_specific_checks_still_apply_to_urls(settings) -> None:
    from mailops.mailers.probes import supports_probe

    for provider in ("postmark", "mailgun", "sendgrid", "brevo", "amazon_ses"):
        assert supports_probe(type(build(settings, PROVIDER_URLS[provider]))), provider
    assert not supports_probe(type(build(settings, PROVIDER_URLS["mailtrap"])))


@pytest.mark.django_db
def test_an_amazon_ses_url_with_region_keys_and_endpoint_sends(
    provider_api_factory: Callable[..., ProviderAPI], settings, tmp_path
) -> None:
    api = provider_api_factory("amazon_ses")
    session = api.options()["session_params"]
    query = urlencode({**session, "endpoint_url": api.url.rstrip("/")})
    url = f"anymail+amazon-ses://?{query}"
    env = mailers_from_environ({"MAILER_URL": url}, outbox_dir=tmp_path)
    settings.MAILERS = env.mailers

    summary = send_test_mail(from_addresses(["alice@example.com"]), trigger=MailTrigger.API)

    assert summary.logs().get().status == MailStatus.SENT
    (exchange,) = api.sends
    authorization = exchange.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=" + api.shape.expected(api.key))
    assert f"/{session['region_name']}/ses/aws4_request" in authorization
