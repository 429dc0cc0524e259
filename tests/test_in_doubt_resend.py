"""The admin's resend asks explicitly before sending a message that may already have arrived.

What is resent goes through either send path (``delivered_to``: locmem,
and a loopback SMTP server through Django's SMTP class and a subclass).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from mailops.models import MailLog, MailStatus, MailTrigger
from tests.backends import DJANGO_SMTP, LOCMEM, SUBCLASSED_SMTP
from tests.maillog_fixtures import CHANGELIST, make_log
from tests.scale_fixtures import use_server

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


@pytest.fixture(params=[LOCMEM, DJANGO_SMTP, SUBCLASSED_SMTP], ids=["locmem", "bytes", "message"])
def delivered_to(request: pytest.FixtureRequest, settings: Any) -> Callable[[], list[str]]:
    """The mailer a resend goes through; what reached it, by recipient."""
    if request.param == LOCMEM:
        return lambda: sorted(message.to[0] for message in mail.outbox)
    server = request.getfixturevalue("plain_smtp")
    use_server(settings, server, backend=request.param)
    return lambda: sorted(message.rcpt_tos[0] for message in server.messages)


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


def test_confirming_without_the_tick_leaves_in_doubt_rows_out(
    auditor: Client, selection, delivered_to
) -> None:
    done = post_resend(auditor, selection, confirm=True)

    assert resent() == ["refused@example.com"]
    texts = [str(m) for m in done.context["messages"]]
    assert (
        "1 selected entry was not resent: in doubt (the server may already have accepted it)."
        in texts
    )
    assert delivered_to() == ["refused@example.com"]


def test_ticking_the_box_resends_in_doubt_rows_too(
    auditor: Client, selection, delivered_to
) -> None:
    post_resend(auditor, selection, confirm=True, include_in_doubt="yes")

    assert resent() == ["doubt@example.com", "refused@example.com"]
    assert delivered_to() == ["doubt@example.com", "refused@example.com"]


def test_a_selection_of_only_in_doubt_rows_can_still_be_confirmed(auditor: Client) -> None:
    only = [make_log(status=MailStatus.FAILED, recipient="d@example.com", in_doubt=True)]

    page = post_resend(auditor, only, confirm=False).content.decode()
    assert 'value="Yes, resend"' in page
    post_resend(auditor, only, confirm=True, include_in_doubt="yes")

    assert resent() == ["d@example.com"]
