"""``manage.py check`` for proof-of-arrival mailboxes: mailops.E030, E031, W030."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from mailops.arrival.checks import check_mailboxes

PASSWORD = "check-imap-Pa55"


def ids(settings: Any, mailboxes: Any) -> list[str]:
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": mailboxes}
    return [message.id for message in check_mailboxes()]


def test_a_good_mailbox_passes(settings: Any) -> None:
    box = {"host": "imap.example.com", "username": "u@example.com", "password": PASSWORD}
    assert ids(settings, {"default": box}) == []


def test_a_malformed_entry_is_an_error_without_the_password(settings: Any) -> None:
    settings.MAILOPS = {
        **settings.MAILOPS,
        "MAILBOXES": {"default": {"host": "h", "password": PASSWORD, "port": 0}},
    }
    [message] = check_mailboxes()
    assert message.id == "mailops.E030"
    assert "needs username" in message.msg
    assert PASSWORD not in message.msg
    # The README is a front page now: the hint names the page that explains E030.
    assert "see mailops.E030 in the checks reference" in message.hint


def test_a_mailbox_for_an_unknown_mailer(settings: Any) -> None:
    box = {"host": "h", "username": "u", "password": PASSWORD}
    assert ids(settings, {"nosuch": box}) == ["mailops.E031"]


def test_plain_imap_to_a_remote_host_warns(settings: Any) -> None:
    box = {"host": "imap.example.com", "username": "u", "password": PASSWORD, "ssl": False}
    assert ids(settings, {"default": box}) == ["mailops.W030"]
    assert ids(settings, {"default": {**box, "host": "127.0.0.1"}}) == []


def test_errors_stop_manage_py_check(settings: Any) -> None:
    settings.MAILOPS = {**settings.MAILOPS, "MAILBOXES": {"default": "imaps://x"}}
    with pytest.raises(SystemCheckError, match=r"mailops\.E030"):
        call_command("check", stdout=StringIO(), stderr=StringIO())
