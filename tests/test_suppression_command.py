"""`sendtestmail` and the suppression list: rejected with why, or sent anyway on request."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from mailops.models import MailLog, MailStatus
from mailops.suppression import suppress_address
from mailops.suppression.models import SuppressionReason
from tests.commands import run_sendtestmail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dead() -> None:
    suppress_address(
        "dead@example.com", reason=SuppressionReason.HARD_BOUNCE, detail="5.1.1 no such user"
    )


def test_a_suppressed_recipient_is_rejected_with_why_and_the_others_are_sent() -> None:
    code, out, error = run_sendtestmail("dead@example.com", "ok@example.com")

    assert code == 1
    assert "rejected  dead@example.com: suppressed since " in out
    assert ": 5.1.1 no such user" in out
    assert "1 recipient is on the suppression list" in error
    assert "--ignore-suppression sends anyway" in error
    assert [m.to for m in mail.outbox] == [["ok@example.com"]]
    assert MailLog.objects.get(recipient="dead@example.com").status == MailStatus.REJECTED


def test_ignore_suppression_sends_and_exits_0() -> None:
    code, _out, _ = run_sendtestmail("dead@example.com", "--ignore-suppression")
    assert code == 0
    assert [m.to for m in mail.outbox] == [["dead@example.com"]]


def test_json_counts_the_suppressed() -> None:
    code, out, _ = run_sendtestmail("dead@example.com", "ok@example.com", "--json")
    assert code == 1
    result = json.loads(out)
    assert result["counts"] == {
        "sent": 1,
        "failed": 0,
        "rejected": 1,
        "suppressed": 1,
        "queued": 0,
    }
    dead = next(m for m in result["messages"] if m["recipient"] == "dead@example.com")
    assert dead["status"] == "rejected"
    assert dead["error"].endswith(": 5.1.1 no such user")


def test_dry_run_shows_the_suppressed_recipient() -> None:
    code, out, _ = run_sendtestmail("dead@example.com", "--dry-run")
    assert "rejected  dead@example.com: suppressed since" in out
    assert not MailLog.objects.exists()
    assert code == 1
