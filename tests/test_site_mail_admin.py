"""Site mail on the audit page: its own trigger filter, in the summary and chart, and resend."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.maillog_fixtures import CHANGELIST, admin_client_for, auditor, make_log

__all__ = ["admin_client_for", "auditor"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_site_mail(settings: Any) -> None:
    """Two site mails sent through the site's own mailer, and one test mail."""
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True}
    mail.send_mail("Password reset", "secret link", None, ["alice@example.com"])
    mail.send_mail("Welcome", "Hello", None, ["bob@example.com"])
    make_log(status=MailStatus.FAILED, recipient="carol@example.com", subject="Test mail")


def test_the_trigger_filter_separates_site_mail_from_test_mail(
    auditor: Client, logged_site_mail: None
) -> None:
    site = auditor.get(CHANGELIST + "?trigger__exact=site")
    tests = auditor.get(CHANGELIST + "?trigger__exact=admin_action")

    assert sorted(r.recipient for r in site.context["cl"].result_list) == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert [r.recipient for r in tests.context["cl"].result_list] == ["carol@example.com"]
    assert "Site mail" in site.text
    assert site.context["mailops_summary"].counts == {"sent": 2}
    assert site.context["mailops_chart"].total_sent == 2
    assert site.context["mailops_chart"].total_failed == 0


def test_site_mail_counts_in_the_whole_logs_summary_and_chart(
    auditor: Client, logged_site_mail: None
) -> None:
    page = auditor.get(CHANGELIST)

    assert page.context["mailops_summary"].counts == {"sent": 2, "failed": 1}
    assert (
        page.context["mailops_chart"].total_sent,
        page.context["mailops_chart"].total_failed,
    ) == (
        2,
        1,
    )


def resend(client: Client, logs: list[MailLog], *, confirm: bool) -> Any:
    data: dict[str, Any] = {"action": "resend", "_selected_action": [log.pk for log in logs]}
    if confirm:
        data["post"] = "yes"
    return client.post(CHANGELIST, data, follow=confirm)


def test_site_mail_without_a_body_is_not_resent_and_says_why(
    auditor: Client, logged_site_mail: None
) -> None:
    rows = list(MailLog.objects.all())
    mail.outbox.clear()

    page = resend(auditor, rows, confirm=False).text
    assert "2 entries: site mail without a stored body" in page

    done = resend(auditor, rows, confirm=True)

    texts = [str(m) for m in done.context["messages"]]
    assert (
        "2 selected entries were not resent: site mail without a stored body "
        "(MAILOPS STORE_SITE_MAIL_BODY is off)." in texts
    )
    resent = MailLog.objects.filter(trigger=MailTrigger.RESEND)
    assert list(resent.values_list("recipient", flat=True)) == ["carol@example.com"]
    assert [m.to for m in mail.outbox] == [["carol@example.com"]]


def test_site_mail_with_a_stored_body_can_be_resent(auditor: Client, settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": True, "STORE_SITE_MAIL_BODY": True}
    mail.send_mail("Welcome", "Hello Bob", None, ["bob@example.com"])
    original = MailLog.objects.get()
    mail.outbox.clear()

    resend(auditor, [original], confirm=True)

    new = MailLog.objects.get(trigger=MailTrigger.RESEND)
    assert (new.recipient, new.subject, new.body, new.status) == (
        "bob@example.com",
        "Welcome",
        "Hello Bob",
        MailStatus.SENT,
    )
    # mailops' own resend is not logged a second time as site mail.
    assert MailLog.objects.filter(trigger=MailTrigger.SITE).count() == 1
    assert mail.outbox[0].body == "Hello Bob"
