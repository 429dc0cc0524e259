"""More German admin pages, read as text: the doctor's findings, resend, batch progress.

The browser test (test_translations_browser) covers the mail log, an entry, the
Mailers page and the send confirmation as a browser shows them; these pages are
read from the HTML with the tags removed.
"""

from __future__ import annotations

import html as html_module
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from mailops.models import MailStatus
from tests.catalogues import english_left
from tests.dns_server import LoopbackDNSServer
from tests.maillog_fixtures import CHANGELIST, make_log

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"


def visible_text(response: Any) -> str:
    assert response.status_code == 200
    page = response.content.decode()
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html_module.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.fixture
def german(settings: Any) -> Any:
    settings.LANGUAGE_CODE = "de"
    return settings


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def test_the_doctors_findings_on_the_mailers_page_are_german(
    german: Any, admin_client: Client, dns_server: LoopbackDNSServer
) -> None:
    german.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        "relay": {"BACKEND": SMTP, "OPTIONS": {"host": "smtp.good.test", "password": "pw"}},
    }
    german.DEFAULT_FROM_EMAIL = "app@good.test"
    german.MAILOPS = {
        "DEFAULT_MAILER": "default",
        "FROM_EMAILS": {"relay": "app@double.test"},
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1.0,
    }
    checked = admin_client.post(reverse("admin:mailops_mailer_dns", args=["relay"]), follow=True)
    text = visible_text(checked)
    assert "DNS-Prüfung von relay (double.test)" in text
    assert "SPF-Eintr" in text, text  # the findings themselves
    assert english_left(text) == []


def test_the_resend_confirmation_is_german(german: Any, admin_client: Client) -> None:
    logs = [
        make_log(status=MailStatus.FAILED, error="421 busy"),
        make_log(status=MailStatus.REJECTED, recipient="", error="no address"),
    ]
    data = {"action": "resend", "_selected_action": [log.pk for log in logs]}
    text = visible_text(admin_client.post(CHANGELIST, data))
    assert "Nachricht wird erneut gesendet" in text
    assert english_left(text) == []


def test_the_batch_progress_page_is_german(german: Any, admin_client: Client) -> None:
    batch_id = uuid.uuid4()
    make_log(status=MailStatus.SENT, batch_id=batch_id)
    make_log(status=MailStatus.QUEUED, recipient="q@example.com", batch_id=batch_id)
    url = reverse("admin:mailops_batch", kwargs={"batch_id": batch_id})
    text = visible_text(admin_client.get(url))
    assert "Stapel" in text
    assert english_left(text) == []


def test_the_self_service_page_is_german(german: Any, admin_client: Client) -> None:
    text = visible_text(admin_client.get(reverse("mailops:self_service")))
    assert "Mir eine Testmail senden" in text
    assert english_left(text) == []


def test_the_suppression_list_and_its_confirmation_are_german(
    german: Any, admin_client: Client
) -> None:
    from mailops.suppression.feed import suppress_address
    from mailops.suppression.models import SuppressionReason

    entry = suppress_address(
        "gone@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 user unknown"
    )
    suppress_address("hand@example.com")
    listing = visible_text(admin_client.get("/admin/mailops/suppression/"))
    assert "Hard Bounce" in listing
    assert english_left(listing) == []
    change = visible_text(admin_client.get(f"/admin/mailops/suppression/{entry.pk}/change/"))
    assert "gesperrt seit" in change.lower()
    assert english_left(change) == []
    data = {"action": "unsuppress_selected", "_selected_action": [entry.pk]}
    confirmation = visible_text(admin_client.post("/admin/mailops/suppression/", data))
    assert "von der Sperrliste entfernt" in confirmation
    assert english_left(confirmation) == []


def test_a_bounced_entry_and_the_unmatched_reports_are_german(
    german: Any, admin_client: Client
) -> None:
    from django.utils import timezone

    from mailops.bounces.models import UnmatchedKind
    from mailops.models import UnmatchedBounce

    log = make_log(status=MailStatus.BOUNCED, dsn_status="5.1.1", bounced_at=timezone.now())
    entry = visible_text(admin_client.get(f"{CHANGELIST}{log.pk}/change/"))
    assert "das Postfach existiert nicht" in entry
    assert english_left(entry) == []
    listing = visible_text(admin_client.get(f"{CHANGELIST}?bounce=hard"))
    assert english_left(listing) == []
    UnmatchedBounce.objects.create(
        mailer="default",
        mailbox="bounces@example.com:993",
        folder="INBOX",
        uid=7,
        kind=UnmatchedKind.COMPLAINED,
        recipient="gone@example.com",
        fingerprint="f" * 64,
    )
    reports = visible_text(admin_client.get("/admin/mailops/unmatchedbounce/"))
    assert "Beschwerde" in reports
    assert english_left(reports) == []
