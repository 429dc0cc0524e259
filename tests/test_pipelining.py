"""SMTP PIPELINING (RFC 2920): one group per message where offered, lock-step otherwise.

The fault cases run with pipelining on and off through the ``faulty_smtp``
fixture (tests/test_delivery_guarantees.py); here is what pipelining itself
promises. The server notes any command sent ahead where it may not be,
and the fixture fails the test on one. The refusal cases run on both send
paths (``backend``); grouping is the bytes path's alone (the message path
sends through smtplib's ``sendmail()``, lock-step).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.backends import DJANGO_SMTP
from tests.faulty_smtp import FaultySMTPServer

pytestmark = pytest.mark.django_db

RECIPIENTS = [f"user{i}@example.com" for i in range(5)]


def use(settings: Any, server: FaultySMTPServer, backend: str = DJANGO_SMTP) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": server.options()},
    }


def test_each_message_goes_as_one_group_where_the_server_offers_pipelining(
    settings: Any, faulty_smtp: FaultySMTPServer
) -> None:
    use(settings, faulty_smtp)

    summary = send_test_mail(from_addresses(RECIPIENTS), trigger=MailTrigger.COMMAND)

    assert {row.status for row in summary.logs()} == {MailStatus.SENT}
    assert faulty_smtp.deliveries == Counter({address: 1 for address in RECIPIENTS})
    assert faulty_smtp.connections == 1
    # MAIL arrived with its RCPT and DATA: pipelined where offered, lock-step where not.
    assert faulty_smtp.groups == (len(RECIPIENTS) if faulty_smtp.pipelining else 0)


def test_a_refused_recipient_in_a_group_fails_that_recipient_only(
    settings: Any, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp, backend)
    faulty_smtp.faults[RECIPIENTS[1]] = "550_rcpt"
    faulty_smtp.faults[RECIPIENTS[3]] = "550_rcpt"

    summary = send_test_mail(from_addresses(RECIPIENTS), trigger=MailTrigger.COMMAND)

    rows = {row.recipient: row for row in summary.logs()}
    refused = {RECIPIENTS[1], RECIPIENTS[3]}
    for address, row in rows.items():
        expected = (MailStatus.FAILED, 550) if address in refused else (MailStatus.SENT, None)
        assert (row.status, row.smtp_code) == expected
    assert faulty_smtp.deliveries == Counter({a: 1 for a in RECIPIENTS if a not in refused})
    assert faulty_smtp.connections == 1


def test_a_refused_sender_fails_each_message_once_on_one_connection(
    settings: Any, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    use(settings, faulty_smtp, backend)
    faulty_smtp.mail_faults = ["553 5.1.8 Sender address rejected"] * len(RECIPIENTS)

    summary = send_test_mail(from_addresses(RECIPIENTS), trigger=MailTrigger.COMMAND)

    assert {(row.status, row.smtp_code, row.attempts) for row in summary.logs()} == {
        (MailStatus.FAILED, 553, 1)
    }
    assert not faulty_smtp.deliveries
    assert faulty_smtp.connections == 1
    assert faulty_smtp.quits == 1


def test_a_server_that_refuses_the_sender_and_rset_gets_one_try_and_quit(
    settings: Any, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    # Postfix before STARTTLS: 530 to MAIL and to RSET. A new connection would
    # get the same: the other messages fail with the reason, unsent.
    use(settings, faulty_smtp, backend)
    refusal = "530 5.7.0 Must issue a STARTTLS command first"
    faulty_smtp.mail_faults = [refusal] * len(RECIPIENTS)
    faulty_smtp.rset_reply = refusal

    summary = send_test_mail(from_addresses(RECIPIENTS), trigger=MailTrigger.COMMAND)

    assert {(row.status, row.smtp_code, row.attempts) for row in summary.logs()} == {
        (MailStatus.FAILED, 530, 1)
    }
    # One MAIL reached the server, on one connection, which ended with QUIT.
    assert len(faulty_smtp.mail_faults) == len(RECIPIENTS) - 1
    assert faulty_smtp.connections == 1
    assert faulty_smtp.quits == 1
