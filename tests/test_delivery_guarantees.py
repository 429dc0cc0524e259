"""Never twice, reconnect and carry on: delivery against a server that fails on purpose.

Each case runs inline (``retry=False``: no worker to come back) and queued
(``retry=True``: transient failures wait for the worker's next try), on
both send paths (``backend``: Django's SMTP class, and a subclass of it,
which gets full messages), with pipelining on and off, on SQLite and
PostgreSQL. The server counts what it stored per recipient.
"""

from __future__ import annotations

import pytest

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.sending.delivery import deliver_batch
from mailops.sending.outcomes import IN_DOUBT_PREFIX
from mailops.services import send_test_mail
from tests.faulty_smtp import FaultySMTPServer

pytestmark = pytest.mark.django_db

A, B, C = "a@example.com", "b@example.com", "c@example.com"


def use_faulty(settings: pytest.FixtureRequest, server: FaultySMTPServer, backend: str) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": server.options()},
    }


def send(settings, server: FaultySMTPServer, *, body: str, backend: str) -> dict[str, MailLog]:
    """Send to A, B, C inline (no worker: failures are final); rows by recipient."""
    use_faulty(settings, server, backend)
    summary = send_test_mail(from_addresses([A, B, C]), trigger=MailTrigger.COMMAND, body=body)
    return {row.recipient: row for row in summary.logs()}


def queue_and_deliver(
    settings, server: FaultySMTPServer, *, body: str, backend: str
) -> dict[str, MailLog]:
    """Rows written queued, then one delivery run with retries, as a worker does."""
    use_faulty(settings, server, backend)
    from mailops.models import MailLog as Row

    batch = [
        Row.objects.create(
            recipient=address,
            mailer="default",
            trigger=MailTrigger.COMMAND,
            subject="guarantee",
            body=body,
            from_email="sender@example.com",
            message_id=f"<{address}.guarantee@example.com>",
        )
        for address in (A, B, C)
    ]
    batch_id = batch[0].batch_id
    Row.objects.filter(pk__in=[row.pk for row in batch]).update(batch_id=batch_id)
    deliver_batch(batch_id, retry=True)
    return {row.recipient: row for row in Row.objects.filter(batch_id=batch_id)}


@pytest.fixture(params=["inline", "queued"])
def deliver(request, settings, backend):
    def run(server: FaultySMTPServer, *, body: str = "body") -> dict[str, MailLog]:
        if request.param == "inline":
            return send(settings, server, body=body, backend=backend)
        return queue_and_deliver(settings, server, body=body, backend=backend)

    run.queued = request.param == "queued"  # type: ignore[attr-defined]
    return run


def test_a_message_whose_reply_is_lost_is_in_doubt_and_never_retried(deliver, faulty_smtp):
    faulty_smtp.faults[B] = "store_then_drop"

    rows = deliver(faulty_smtp)

    assert faulty_smtp.deliveries == {A: 1, B: 1, C: 1}
    assert rows[B].status == MailStatus.FAILED
    assert rows[B].in_doubt
    assert rows[B].next_attempt_at is None
    assert f"[default] {IN_DOUBT_PREFIX}" in rows[B].error
    assert "may have accepted it" in rows[B].error
    # The connection was re-opened for C.
    assert (rows[A].status, rows[C].status) == (MailStatus.SENT, MailStatus.SENT)
    assert faulty_smtp.connections == 2


def test_a_drop_before_the_final_dot_is_safe_and_retried_by_a_worker(deliver, faulty_smtp):
    faulty_smtp.faults[B] = "drop_mid_data"
    # On a busy machine the server may take more than the usual 2 s to read 30 MB.
    faulty_smtp.timeout = 60

    # Larger than the socket buffers: the drop is seen before the final dot is
    # sent (a small message would be handed to the kernel whole, and be in doubt).
    rows = deliver(faulty_smtp, body=("x" * 76 + "\n") * 400_000)

    assert faulty_smtp.deliveries == {A: 1, C: 1}
    assert not rows[B].in_doubt
    assert IN_DOUBT_PREFIX not in rows[B].error
    if deliver.queued:
        assert rows[B].status == MailStatus.QUEUED
        assert rows[B].next_attempt_at is not None
        assert "will retry at" in rows[B].error
    else:
        assert rows[B].status == MailStatus.FAILED


@pytest.mark.parametrize("fault", ["drop", "421"])
def test_a_connection_lost_between_messages_is_reopened_at_once(deliver, faulty_smtp, fault):
    # The first MAIL goes through; the second finds the connection gone.
    faulty_smtp.mail_faults = ["", fault]

    rows = deliver(faulty_smtp)

    assert faulty_smtp.deliveries == {A: 1, B: 1, C: 1}
    assert {row.status for row in rows.values()} == {MailStatus.SENT}
    assert {row.attempts for row in rows.values()} == {1}
    assert faulty_smtp.connections == 2


def test_reconnecting_is_bounded_when_the_server_keeps_dropping(deliver, faulty_smtp):
    faulty_smtp.mail_faults = ["drop"] * 50

    rows = deliver(faulty_smtp)

    assert faulty_smtp.deliveries == {}
    assert all("closed the connection" in row.error for row in rows.values())
    assert not any(row.in_doubt for row in rows.values())
    # One reconnect per message, at most three in a row: then a failure each.
    assert faulty_smtp.connections <= 1 + 3 + 3


def test_421_at_rset_after_refusals_does_not_cost_the_next_message(deliver, faulty_smtp):
    # Postfix's smtpd_hard_error_limit: RSET after a refusal gets 421 and a hang-up.
    faulty_smtp.faults[A] = "550_rcpt"
    faulty_smtp.rset_421_after_refusals = 1

    rows = deliver(faulty_smtp)

    assert rows[A].status == MailStatus.FAILED
    assert rows[A].smtp_code == 550
    assert faulty_smtp.deliveries == {B: 1, C: 1}
    assert (rows[B].status, rows[C].status) == (MailStatus.SENT, MailStatus.SENT)


@pytest.mark.parametrize("fault", ["421_rcpt", "421_data", "421_end"])
def test_a_421_before_acceptance_is_transient_and_not_in_doubt(deliver, faulty_smtp, fault):
    faulty_smtp.faults[B] = fault

    rows = deliver(faulty_smtp)

    assert faulty_smtp.deliveries == {A: 1, C: 1}
    assert rows[B].smtp_code == 421
    assert not rows[B].in_doubt
    expected = MailStatus.QUEUED if deliver.queued else MailStatus.FAILED
    assert rows[B].status == expected
    assert rows[C].status == MailStatus.SENT


def test_a_server_that_never_answers_the_end_of_data_leaves_the_message_in_doubt(
    deliver, faulty_smtp
):
    faulty_smtp.faults[A] = "hang"

    rows = deliver(faulty_smtp)

    assert rows[A].status == MailStatus.FAILED
    assert rows[A].in_doubt
    assert "timed out" in rows[A].error
    assert faulty_smtp.deliveries == {A: 1, B: 1, C: 1}


def test_a_refused_recipient_keeps_the_connection(deliver, faulty_smtp):
    faulty_smtp.faults[A] = "550_rcpt"

    rows = deliver(faulty_smtp)

    assert (rows[A].status, rows[A].smtp_code) == (MailStatus.FAILED, 550)
    assert faulty_smtp.deliveries == {B: 1, C: 1}
    # RSET, then the next message on the same connection.
    assert faulty_smtp.connections == 1
