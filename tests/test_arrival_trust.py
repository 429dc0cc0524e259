"""Only the receiving server's own Authentication-Results are believed (RFC 8601 §5).

Anyone on the way can add an ``Authentication-Results`` header saying
"pass"; the receiving server (here the Dovecot fixture's delivering SMTP
server, authserv-id ``mx.mailops.test``) is the only one whose verdict
counts. Without it the row says "no trusted verdict" and ``--verify`` fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from mailops.arrival.verify import summarize_authentication_results
from mailops.models import ArrivalStatus, MailLog
from tests.commands import run_sendtestmail
from tests.imap_server import AUTHSERV_ID, DeliveringSMTPServer, DovecotServer

pytestmark = pytest.mark.django_db(transaction=False)

FORGED = (
    "attacker.example; spf=pass smtp.mailfrom=x; dkim=pass header.d=x; dmarc=pass header.from=x"
)


def settings_for(smtp: DeliveringSMTPServer, dovecot: DovecotServer, **mailbox: Any) -> Any:
    return override_settings(
        MAILERS={
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": smtp.options(),
            }
        },
        MAILOPS={"DEFAULT_MAILER": "default", "MAILBOXES": {"default": dovecot.mailbox(**mailbox)}},
    )


def test_a_forged_verdict_alone_is_not_believed(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.authentication_results = FORGED
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "arrived in INBOX after" in err
    assert (
        "but with no trusted verdict (Authentication-Results only from attacker.example; "
        f"trusted: {AUTHSERV_ID})" in err
    )
    assert "authserv_id" in err  # the hint says what to set if that header is genuine
    log = MailLog.objects.get()
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.INBOX, "INBOX")
    assert log.authentication_results.startswith("no trusted verdict")
    assert "pass" not in log.authentication_results


def test_an_unreadable_own_verdict_does_not_let_a_forged_one_below_through(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    # The receiving server's header on top (unparseable), a forged "pass" under it.
    delivering_smtp_server.authentication_results = (
        f"{AUTHSERV_ID}; spf\r\nAuthentication-Results: {FORGED}"
    )
    with settings_for(delivering_smtp_server, dovecot_server):
        code, out, _err = run_sendtestmail("--verify", "--verify-timeout", "10", "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["ok"] is False
    [message] = payload["messages"]
    assert message["authentication_results"] == (
        f"no trusted verdict (the header of {AUTHSERV_ID} is unreadable)"
    )


def test_the_receivers_verdict_is_taken_from_among_forged_ones(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.authentication_results = (
        f"{AUTHSERV_ID}; spf=fail smtp.mailfrom=example.com\r\nAuthentication-Results: {FORGED}"
    )
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 0, err
    assert MailLog.objects.get().authentication_results == "spf=fail"


@pytest.mark.parametrize(
    ("headers", "summary"),
    [
        ([], ""),
        ([f"{AUTHSERV_ID}; dkim=pass"], "dkim=pass"),
        # Upper case, a comment and a version after the authserv-id.
        (["(ours) MX.Mailops.Test 1; spf=pass"], "spf=pass"),
        # The topmost trusted header wins over an older one below it.
        ([FORGED, f"{AUTHSERV_ID}; spf=fail", f"{AUTHSERV_ID}; spf=pass"], "spf=fail"),
        (
            [FORGED, "not a header at all"],
            "no trusted verdict (Authentication-Results only from attacker.example; "
            f"trusted: {AUTHSERV_ID})",
        ),
        (
            [f'"{AUTHSERV_ID}"; ;;', FORGED],
            f"no trusted verdict (the header of {AUTHSERV_ID} is unreadable)",
        ),
    ],
)
def test_summary_trusts_only_the_topmost_header_of_the_receiver(
    headers: list[str], summary: str
) -> None:
    assert summarize_authentication_results(headers, authserv_id=AUTHSERV_ID) == summary
