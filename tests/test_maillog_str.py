"""How a log row names itself (admin breadcrumbs, history, delete confirmations)."""

from __future__ import annotations

from mailops.models import MailLog, MailStatus, MailTrigger


def test_a_message_row_is_named_by_its_recipient_and_status() -> None:
    log = MailLog(recipient="ann@example.com", status=MailStatus.SENT, trigger=MailTrigger.COMMAND)
    assert str(log) == "ann@example.com (Sent)"


def test_a_row_without_an_address_says_so() -> None:
    log = MailLog(recipient="", status=MailStatus.REJECTED, trigger=MailTrigger.ADMIN_ACTION)
    assert str(log) == "(no address) (Rejected)"


def test_a_connection_check_is_named_by_its_mailer() -> None:
    log = MailLog(mailer="gmail", status=MailStatus.CHECK_FAILED, trigger=MailTrigger.CHECK)
    assert str(log) == "mailer gmail (Connection check failed)"
