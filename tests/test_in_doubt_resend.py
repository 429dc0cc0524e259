"""The admin's resend asks explicitly before sending a message that may already have arrived."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.maillog_fixtures import CHANGELIST, make_log

pytestmark = pytest.mark.django_db

IN_DOUBT_ERROR = "[default] in doubt: the connection failed after the whole message was sent"


def post_resend(client: Client, logs: list[MailLog], *, confirm: bool, **extra: str) -> Any:
    data: dict[str, Any] = {"action": "resend", "_selected_action": [log.pk for log in logs]}
    if confirm:
        data["post"] = "yes"
    data.update(extra)
    return client.post(CHANGELIST, data, follow=confirm)


def resent() -> list[str]:
    rows = MailLog.objects.filter(trigger=MailTrigger.RESEND).order_by("recipient")
    return list(rows.values_list("recipient", flat=True))


@pytest.fixture
def selection() -> list[MailLog]:
    return [
        make_log(status=MailStatus.FAILED, recipient="refused@example.com", error="550 no"),
        make_log(
            status=MailStatus.FAILED,
            recipient="doubt@example.com",
            error=IN_DOUBT_ERROR,
            in_doubt=True,
        ),
    ]


def test_the_confirmation_page_warns_about_in_doubt_rows(auditor: Client, selection) -> None:
    page = post_resend(auditor, selection, confirm=False).content.decode()

    assert "1 message will be sent again" in page
    assert "1 selected message is in doubt" in page
    assert 'name="include_in_doubt" value="yes"' in page
    assert "1 entry: in doubt (the server may already have accepted it)" in page


def test_confirming_without_the_tick_leaves_in_doubt_rows_out(auditor: Client, selection) -> None:
    done = post_resend(auditor, selection, confirm=True)

    assert resent() == ["refused@example.com"]
    texts = [str(m) for m in done.context["messages"]]
    assert (
        "1 selected entry was not resent: in doubt (the server may already have accepted it)."
        in texts
    )
    assert len(mail.outbox) == 1


def test_ticking_the_box_resends_in_doubt_rows_too(auditor: Client, selection) -> None:
    post_resend(auditor, selection, confirm=True, include_in_doubt="yes")

    assert resent() == ["doubt@example.com", "refused@example.com"]
    assert sorted(m.to[0] for m in mail.outbox) == ["doubt@example.com", "refused@example.com"]


def test_a_selection_of_only_in_doubt_rows_can_still_be_confirmed(auditor: Client) -> None:
    only = [make_log(status=MailStatus.FAILED, recipient="d@example.com", in_doubt=True)]

    page = post_resend(auditor, only, confirm=False).content.decode()
    assert 'value="Yes, resend"' in page
    post_resend(auditor, only, confirm=True, include_in_doubt="yes")

    assert resent() == ["d@example.com"]
