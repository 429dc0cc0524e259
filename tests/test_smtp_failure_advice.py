"""What a failed row says when the server lacks what the mailer asked for (STARTTLS, AUTH).

``describe_failure`` is the one classifier behind a send's row and the
connection check. End to end: tests/test_submission_port_advice.py and
tests/test_postfix_submission.py.
"""

from __future__ import annotations

import smtplib

import pytest

from mailops.mailers.errors import SMTPState, describe_failure, not_offered_advice

PLAIN_WITH_STARTTLS = SMTPState(extensions=frozenset({"starttls", "size", "8bitmime"}), tls=False)
AFTER_STARTTLS = SMTPState(extensions=frozenset({"size", "8bitmime"}), tls=True)
PLAIN_ONLY = SMTPState(extensions=frozenset({"size"}), tls=False)
SMTPLIB_NO_AUTH = "SMTP AUTH extension not supported by server."


@pytest.mark.parametrize(
    ("state", "advice"),
    [
        (
            PLAIN_WITH_STARTTLS,
            "the server does not offer AUTH before STARTTLS, and the mailer does not use "
            "TLS: use smtp+tls:// (use_tls=True)",
        ),
        (
            AFTER_STARTTLS,
            "the server does not offer AUTH; if it relays without a password, remove the "
            "mailer's username and password",
        ),
        (
            PLAIN_ONLY,
            "the server does not offer AUTH; if it relays without a password, remove the "
            "mailer's username and password",
        ),
        # Nothing known about the connection: both likely fixes.
        (
            None,
            "the server does not offer AUTH on this connection. If it offers it after "
            "STARTTLS, use smtp+tls:// (use_tls=True); if it relays without a password, "
            "remove the mailer's username and password",
        ),
    ],
)
def test_missing_auth_advice_follows_what_the_server_offered(
    state: SMTPState | None, advice: str
) -> None:
    failure = describe_failure(smtplib.SMTPNotSupportedError(SMTPLIB_NO_AUTH), smtp=state)

    assert not_offered_advice(SMTPLIB_NO_AUTH, state) == advice
    assert failure.reason == advice
    assert failure.connection_lost
    assert "implicit TLS" not in advice
    assert ".." not in advice


def test_missing_starttls_and_other_extensions_are_named() -> None:
    starttls = describe_failure(
        smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
        smtp=PLAIN_ONLY,
    )
    utf8 = describe_failure(smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server"))

    assert starttls.reason == (
        "the server does not offer STARTTLS, which the mailer requires (use_tls). It may "
        "expect implicit TLS (smtps://, port 465) or speak no TLS at all"
    )
    assert utf8.reason == (
        "the server does not support what the mailer asked for (SMTPUTF8 not supported by server)"
    )
