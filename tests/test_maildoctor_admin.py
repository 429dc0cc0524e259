"""The Mailers page's "Check DNS": runs on demand, caches the findings, never blocks the page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from tests.dns_server import LoopbackDNSServer, SilentDNSServer

SMTP = "django.core.mail.backends.smtp.EmailBackend"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def doctor_settings(settings: Any, dns_server: LoopbackDNSServer) -> Any:
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        "relay": {"BACKEND": SMTP, "OPTIONS": {"host": "smtp.good.test", "password": "pw-s3cret"}},
    }
    settings.DEFAULT_FROM_EMAIL = "app@good.test"
    settings.MAILOPS = {
        "DEFAULT_MAILER": "default",
        "FROM_EMAILS": {"relay": "app@double.test"},
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1.0,
    }
    return settings


@pytest.fixture
def admin_client(client: Client, superuser: Any) -> Client:
    client.force_login(superuser)
    return client


def page_url() -> str:
    return reverse("admin:mailops_mailers")


def dns_url(alias: str) -> str:
    return reverse("admin:mailops_mailer_dns", args=[alias])


def row_html(html: str, alias: str) -> str:
    start = html.index(f'id="mailer-{alias}"')
    return html[start : html.index("</tr>", start)]


def test_the_page_shows_not_checked_and_asks_no_dns(
    doctor_settings: Any, admin_client: Client, silent_dns_server: SilentDNSServer
) -> None:
    doctor_settings.MAILOPS = {
        **doctor_settings.MAILOPS,
        "DNS_NAMESERVERS": [silent_dns_server.nameserver],
    }

    response = admin_client.get(page_url())

    assert response.status_code == 200
    relay_row = row_html(response.content.decode(), "relay")
    assert "not checked" in relay_row
    assert f'action="{dns_url("relay")}"' in relay_row
    assert "Check DNS" in relay_row
    assert silent_dns_server.queries == 0


def test_check_dns_shows_the_findings_and_the_page_keeps_them_from_the_cache(
    doctor_settings: Any, admin_client: Client, silent_dns_server: SilentDNSServer
) -> None:
    response = admin_client.post(dns_url("relay"), follow=True)

    assert response.redirect_chain == [(page_url() + "#mailer-relay", 302)]
    html = response.content.decode()
    assert "DNS check of relay (double.test): 1 error, 1 warning." in html
    relay_row = row_html(html, "relay")
    assert "1 error, 1 warning" in relay_row
    assert "mailops.D021" in relay_row
    assert "double.test has 2 SPF records" in relay_row
    assert "Merge them into one v=spf1 record" in relay_row
    assert "pw-s3cret" not in html
    # The locmem mailer delivers nowhere: no DNS check is offered for it.
    assert "delivers nowhere" in row_html(html, "default")

    # Later page loads read the cache: with DNS now unreachable, nothing is asked.
    doctor_settings.MAILOPS = {
        **doctor_settings.MAILOPS,
        "DNS_NAMESERVERS": [silent_dns_server.nameserver],
    }
    again = admin_client.get(page_url())
    assert "mailops.D021" in row_html(again.content.decode(), "relay")
    assert silent_dns_server.queries == 0


def test_the_cache_expires_after_the_configured_seconds(
    doctor_settings: Any, admin_client: Client
) -> None:
    doctor_settings.MAILOPS = {**doctor_settings.MAILOPS, "DNS_CACHE_SECONDS": 0}
    admin_client.post(dns_url("relay"))

    html = admin_client.get(page_url()).content.decode()

    assert "not checked" in row_html(html, "relay")


def test_a_clean_domain_reads_no_problems(doctor_settings: Any, admin_client: Client) -> None:
    doctor_settings.MAILOPS = {
        **doctor_settings.MAILOPS,
        "FROM_EMAILS": {},
        "DKIM_SELECTORS": {"relay": ["s2048"]},
    }
    response = admin_client.post(dns_url("relay"), follow=True)

    html = response.content.decode()
    assert "DNS check of relay (good.test): no problems." in html
    assert "no problems" in row_html(html, "relay")


def test_a_timeout_is_shown_as_could_not_check(
    doctor_settings: Any, admin_client: Client, silent_dns_server: SilentDNSServer
) -> None:
    doctor_settings.MAILOPS = {
        **doctor_settings.MAILOPS,
        "DNS_NAMESERVERS": [silent_dns_server.nameserver],
    }
    response = admin_client.post(dns_url("relay"), follow=True)

    relay_row = row_html(response.content.decode(), "relay")
    assert "mailops.D002" in relay_row
    assert "Could not check the DNS of double.test" in relay_row


def test_an_unknown_alias_is_an_error_message(doctor_settings: Any, admin_client: Client) -> None:
    response = admin_client.post(dns_url("nope"), follow=True)

    assert "There is no mailer &#x27;nope&#x27; to check." in response.content.decode()


def test_check_dns_only_answers_post(doctor_settings: Any, admin_client: Client) -> None:
    assert admin_client.get(dns_url("relay")).status_code == 405


def test_a_user_who_may_read_the_log_may_check_dns(
    doctor_settings: Any, client: Client, make_user: Any
) -> None:
    client.force_login(make_user("viewer", is_staff=True, perms=("mailops.view_maillog",)))

    response = client.post(dns_url("relay"))

    assert response.status_code == 302
    assert cache.get("mailops:maildoctor:relay")["report"]["domain"] == "double.test"


def test_a_staff_user_without_permission_is_refused(
    doctor_settings: Any, client: Client, make_user: Any
) -> None:
    client.force_login(make_user("nobody", is_staff=True))

    response = client.post(dns_url("relay"))

    assert response.status_code == 403
    assert cache.get("mailops:maildoctor:relay") is None
