"""End to end in a real browser: Debian's Chromium driven by Playwright against live_server.

An operator signs in, selects users, runs "Send test mail", confirms, reads
the result, opens the mail log, filters to failures and exports them as CSV.
Screenshots land in ``test-artifacts/`` (to look at a run; the documentation's
come from ``scripts/screenshots``).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from mailops.models import MailLog, MailStatus
from tests.browser_fixtures import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def test_operator_sends_test_mail_reads_the_log_and_exports_failures(
    page: Any, live_server: Any, settings: Any, smtp_server: Any, superuser: Any, make_user: Any
) -> None:
    settings.MAILERS = {
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": smtp_server.options()},
        "outbox": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
    }
    smtp_server.rejected_recipients["bob@example.com"] = "550 5.1.1 <bob@example.com> No such user"
    alice = make_user("alice", "alice@example.com")
    bob = make_user("bob", "bob@example.com")
    nomail = make_user("nomail", "")
    make_user("untouched", "untouched@example.com")

    # Sign in.
    sign_in(page, live_server.url)

    # Select three users and run the action.
    page.goto(f"{live_server.url}/admin/auth/user/")
    for user in (alice, bob, nomail):
        page.check(f"input[name=_selected_action][value='{user.pk}']")
    page.select_option("select[name=action]", "send_test_mail")
    page.click("button[name=index]")

    # The confirmation page: who gets mail, who is rejected, which mailer.
    page.wait_for_selector("#send-test-mail-form")
    summary = page.inner_text("#send-test-mail-summary")
    assert "2 selected users will get a test mail" in " ".join(summary.split())
    assert "nomail" in page.inner_text("#without-address")
    screenshot(page, "send-test-mail-confirmation.png")
    assert MailLog.objects.count() == 0, "nothing is sent before confirming"
    page.click("#send-test-mail-form [type=submit]")

    # Back on the changelist with an honest summary.
    message = page.inner_text(".messagelist")
    assert "1 sent, 1 failed, 1 rejected" in message
    smtp_server.wait_for_messages(1)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["alice@example.com"]]

    # The link in the message opens the mail log filtered to this batch.
    page.click(".messagelist a")
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 3
    screenshot(page, "mail-log.png")

    # Filter to failures: only bob's row.
    page.goto(f"{live_server.url}/admin/mailops/maillog/")
    page.locator("#changelist-filter a", has_text="Failed").first.click()
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "bob@example.com" in rows.first.inner_text()
    assert "recipient refused" in rows.first.inner_text()
    screenshot(page, "mail-log-failed.png")

    # Export the filtered list as CSV.
    page.locator(".object-tools a", has_text="Export").first.click()
    page.wait_for_selector("select[name=format]")
    page.select_option("select[name=format]", label="csv")
    with page.expect_download() as download_info:
        page.click(".submit-row input[type=submit]")
    exported = Path(download_info.value.path()).read_text(encoding="utf-8-sig")
    rows_out = list(csv.DictReader(io.StringIO(exported)))
    assert [row["recipient"] for row in rows_out] == ["bob@example.com"]
    assert rows_out[0]["status"] == MailStatus.FAILED
    assert smtp_server.password not in exported


def test_batch_page_follows_the_batch_until_it_finishes(
    page: Any, live_server: Any, superuser: Any
) -> None:
    from mailops.admin.batch import batch_url
    from tests.maillog_fixtures import make_batch

    rows = make_batch(4, status=MailStatus.QUEUED, triggered_by=superuser)
    sign_in(page, live_server.url)

    page.goto(live_server.url + batch_url("admin", rows[0].batch_id))
    progress = page.locator("#mailops-batch-progress")
    assert progress.locator("[data-field=done]").inner_text() == "0"
    assert progress.get_attribute("data-finished") == "false"
    assert page.locator("[data-segment=sent]").get_attribute("width") == "0.000%"

    # The worker gets on: the page catches up by itself (it polls its JSON).
    MailLog.objects.filter(pk__in=[r.pk for r in rows[:2]]).update(status=MailStatus.SENT)
    MailLog.objects.filter(pk=rows[2].pk).update(status=MailStatus.FAILED)
    page.wait_for_function(
        "document.querySelector('#mailops-batch-progress [data-field=done]').textContent === '3'"
    )
    assert page.locator("[data-segment=sent]").get_attribute("width") == "50.000%"
    assert page.locator("[data-segment=failed]").get_attribute("x") == "50.000%"
    assert progress.locator("[data-field=failed]").inner_text() == "1"
    screenshot(page, "batch-progress.png")

    MailLog.objects.filter(pk=rows[3].pk).update(status=MailStatus.SENT)
    page.wait_for_function(
        "document.querySelector('#mailops-batch-progress').dataset.finished === 'true'"
    )
    assert progress.locator("[data-field=state_label]").inner_text() == "Finished"
    assert progress.locator("[data-field=percent]").inner_text() == "100"
