"""Admin details a new user notices, checked in a real browser.

The mail log list fits a 1280-pixel window (no horizontal scrolling, errors
readable); the "Send test mail" page's texts follow the chosen mailer.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.browser_fixtures import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_ERROR = (
    "SMTP 550 from smtp.relay.example.net: 5.1.1 <maximilian.mustermann-schneider@"
    "subdomain.example-company.co.uk>: Recipient address rejected: User unknown in virtual "
    "mailbox table; the relay also said: please check the address and try again later"
)


def test_the_mail_log_fits_1280_pixels_and_shows_the_full_error_on_hover(
    page: Any, live_server: Any, superuser: Any, make_user: Any
) -> None:
    operator = make_user("an.operator.with.a.long.name", "operator@example.com", is_staff=True)
    for n in range(5):
        user = make_user(f"recipient.number.{n}.long", f"recipient.number.{n}@example.com")
        MailLog.objects.create(
            recipient=f"maximilian.mustermann-schneider.{n}@subdomain.example-company.co.uk",
            user=user,
            status=MailStatus.FAILED,
            mailer="transactional-relay",
            trigger=MailTrigger.ADMIN_ACTION,
            triggered_by=operator,
            subject="mailops test mail via transactional-relay from www.example.com at 12:00",
            error=LONG_ERROR,
        )
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/mailops/maillog/")
    page.wait_for_selector("#result_list")

    screenshot(page, "maillog-1280.png")
    widths = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth, view: window.innerWidth,"
        " table: document.querySelector('#result_list').getBoundingClientRect().right})"
    )
    assert widths["page"] <= widths["view"], widths
    assert widths["table"] <= widths["view"], widths
    # The error is clamped to a few lines in the list; the tooltip has all of it.
    error = page.locator("#result_list td.field-short_error .mailops-short-error").first
    assert error.get_attribute("title") == LONG_ERROR
    assert error.is_visible()
    box = error.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= widths["view"]


def test_the_confirmation_texts_follow_the_chosen_mailer_and_the_send_time(
    page: Any, live_server: Any, superuser: Any, make_user: Any
) -> None:
    alice = make_user("alice", "alice@example.com")
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/auth/user/")
    page.check(f"input[name=_selected_action][value='{alice.pk}']")
    page.select_option("select[name=action]", "send_test_mail")
    page.click("button[name=index]")
    page.wait_for_selector("#send-test-mail-form")
    assert "via default" in page.input_value("#id_subject")
    assert "Sent: (the time of sending)" in page.input_value("#id_body")

    page.select_option("#id_mailer", "outbox")

    assert page.input_value("#id_subject").endswith("via outbox")
    body = page.input_value("#id_body")
    assert "Mailer: outbox" in body
    assert "Mailer: default" not in body
    page.click("#send-test-mail-form [type=submit]")
    page.wait_for_selector(".messagelist")
    row = MailLog.objects.get()
    assert row.mailer == "outbox"
    assert row.subject.endswith("via outbox")
    assert "Mailer: outbox" in row.body
    assert "(the time of sending)" not in row.body
    assert re.search(r"Sent: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row.body)
