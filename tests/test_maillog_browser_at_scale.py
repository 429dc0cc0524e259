"""In a real browser: the mail log's row checkboxes and "select all" past the count limit.

``MailLogAdmin`` builds the row checkboxes itself (faster than Django's
widget) and rewords "Select all N" when the list was not counted in full;
Django's ``actions.js`` must still drive both.
"""

from __future__ import annotations

from typing import Any

import pytest

from mailops.admin import MailLogAdmin
from mailops.models import MailLog, MailStatus
from tests.browser_fixtures import screenshot, sign_in
from tests.maillog_fixtures import make_log

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_selecting_every_entry_of_a_list_larger_than_the_count_limit(
    page: Any, live_server: Any, superuser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(MailLogAdmin, "count_limit", 3)
    monkeypatch.setattr(MailLogAdmin, "list_per_page", 2)
    for i in range(5):
        make_log(status=MailStatus.FAILED, recipient=f"r{i}@example.com")

    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/mailops/maillog/")

    # One row's checkbox: actions.js counts it.
    boxes = page.locator("input.action-select")
    assert boxes.count() == 2
    boxes.first.check()
    assert page.locator(".action-counter").inner_text() == "1 of 2 selected"

    # The header checkbox selects the page, then offers every matching entry.
    page.check("#action-toggle")
    question = page.locator(".actions .question")
    assert question.inner_text() == "Select all matching entries (more than 3)"
    question.locator("a").click()
    assert page.locator(".actions .all").inner_text() == (
        "All matching entries selected (more than 3)"
    )
    screenshot(page, "mail-log-select-all-large.png")

    # The action gets the whole filtered list: the confirmation names all five.
    page.select_option("select[name=action]", "resend")
    page.click("button[name=index]")
    page.wait_for_selector("input[name=post]", state="attached")
    assert "5 messages will be sent again" in page.content()
    assert MailLog.objects.count() == 5
