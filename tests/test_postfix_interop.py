"""Against a real Postfix 3.7 on loopback (a private instance): the issue's interop cases."""

from __future__ import annotations

from typing import Any

import pytest

from mailops.mailers.connection import verify_connection
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.postfix_server import PostfixServer

pytestmark = pytest.mark.django_db

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def use_postfix(settings: Any, postfix: PostfixServer, **options: Any) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": SMTP_BACKEND, "OPTIONS": postfix.options(**options)},
    }
    settings.DEFAULT_FROM_EMAIL = "ops@mailops-test.localhost"


def test_refused_recipients_past_the_error_limit_do_not_cost_deliverable_ones(
    settings, postfix: PostfixServer
) -> None:
    # smtpd_hard_error_limit = 5: the RSET after the fifth refusal gets 421 and
    # Postfix hangs up. Inline (no worker): the next message must still go out.
    refused = [f"nobody{i}@nowhere.invalid" for i in range(7)]
    deliverable = ["alice@example.test", "bob@example.test"]
    use_postfix(settings, postfix)

    summary = send_test_mail(
        from_addresses([*refused[:5], deliverable[0], *refused[5:], deliverable[1]]),
        trigger=MailTrigger.COMMAND,
    )

    rows = {row.recipient: row for row in summary.logs()}
    assert {rows[address].status for address in deliverable} == {MailStatus.SENT}
    assert {(rows[a].status, rows[a].smtp_code) for a in refused} == {(MailStatus.FAILED, 554)}
    assert postfix.deliveries(2) == {address: 1 for address in deliverable}
    log = postfix.wait_for_log("too many errors")
    # The refusals share a connection (RSET) up to the limit, then a fresh one.
    assert log.count("lost connection after RCPT") == 0


def test_a_failed_connection_check_says_quit_to_postfix(settings, postfix: PostfixServer) -> None:
    # This Postfix offers no AUTH: a mailer with a password fails the check at AUTH.
    use_postfix(settings, postfix, username="ops", password="relay-pass-4821")

    result = verify_connection("default")

    assert not result.ok
    assert "AUTH" in result.error
    log = postfix.wait_for_log("disconnect from localhost[127.0.0.1] ehlo=1 quit=1")
    # ("lost connection after CONNECT" is the fixture's own readiness probe.)
    assert "lost connection after EHLO" not in log
    assert "lost connection after AUTH" not in log
