"""The admin in German: the mail log, entries, Mailers, the suppression list, the confirmation.

Every page is read as the user sees it (visible text) and must hold none of
mailops' English texts: no piece of two words or more of any msgid in the
German catalogue. Django's own admin strings are translated by Django.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.suppression.feed import suppress_address
from mailops.suppression.models import SuppressionReason
from tests.browser_fixtures import screenshot, sign_in
from tests.catalogues import english_left

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def german_page(browser: Any) -> Iterator[Any]:
    """A browser that asks for German (Accept-Language: de-DE), as a German admin's does."""
    context = browser.new_context(viewport={"width": 1920, "height": 1000}, locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_the_german_admin_shows_no_english_mailops_text(
    german_page: Any, live_server: Any, settings: Any, superuser: Any, make_user: Any
) -> None:
    # A German site (LANGUAGE_CODE) seen from a German browser (LocaleMiddleware).
    settings.LANGUAGE_CODE = "de"
    page = german_page
    operator = make_user("operator", "operator@example.com", is_staff=True)
    alice = make_user("alice", "alice@example.com")
    make_user("nomail", "")
    statuses = [
        MailStatus.SENT,
        MailStatus.FAILED,
        MailStatus.REJECTED,
        MailStatus.QUEUED,
        MailStatus.DELIVERED,
        MailStatus.BOUNCED,
        MailStatus.CHECKED,
    ]
    rows = [
        MailLog.objects.create(
            recipient="alice@example.com",
            user=alice,
            status=status,
            mailer="default",
            trigger=MailTrigger.ADMIN_ACTION,
            triggered_by=operator,
            subject="Testmail",
            error="550 5.1.1 <alice@example.com>" if status == MailStatus.FAILED else "",
            smtp_code=550 if status == MailStatus.FAILED else None,
            # The bounced entry carries a bounce read from the mailbox.
            dsn_status="5.1.1" if status == MailStatus.BOUNCED else "",
            bounced_at=timezone.now() if status == MailStatus.BOUNCED else None,
        )
        for status in statuses
    ]
    suppress_address(
        "gone@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 user unknown"
    )
    suppress_address("hand@example.com")
    sign_in(page, live_server.url)

    pages = {
        "mail log": "/admin/mailops/maillog/",
        "entry": f"/admin/mailops/maillog/{rows[1].pk}/change/",
        "mailers": reverse("admin:mailops_mailers"),
        "bounced entry": f"/admin/mailops/maillog/{rows[5].pk}/change/",
        "suppression list": "/admin/mailops/suppression/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        page.wait_for_selector("#content")
        assert page.locator("html").get_attribute("lang") == "de"
        screenshot(page, f"german-{name.replace(' ', '-')}.png")
        assert english_left(page.inner_text("body")) == [], name

    # The send-test-mail confirmation, reached as an admin does: select, act.
    page.goto(f"{live_server.url}/admin/auth/user/")
    for user in get_user_model().objects.all():
        page.check(f"input[name=_selected_action][value='{user.pk}']")
    page.select_option("select[name=action]", "send_test_mail")
    page.click("button[name=index]")
    page.wait_for_selector("#send-test-mail-form")
    screenshot(page, "german-send-test-mail-confirmation.png")
    body = page.inner_text("body")
    assert "Testmail von " in page.input_value("#id_subject")
    assert english_left(body) == [], "confirmation"
    assert english_left(page.input_value("#id_body")) == []
