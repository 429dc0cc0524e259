"""What a failed row says for the SMTP refusals that name the wrong culprit or the wrong fix.

``describe_failure`` is the one classifier behind a send's row and the
connection check: a sender refused at RCPT or MAIL (the replies of real
servers, Postfix, Exim, Sendmail, as smtplib hands them over) and a server
that lacks STARTTLS or AUTH. End to end: tests/test_submission_port_advice.py
and tests/test_postfix_submission.py.
"""

from __future__ import annotations

import smtplib
from typing import Any

import pytest

from mailops.mailers.errors import (
    UNQUALIFIED_SENDER_HINT,
    SMTPState,
    describe_failure,
    not_offered_advice,
)
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.faulty_smtp import FaultySMTPServer
from tests.smtp_server import LoopbackSMTPServer

# Postfix, reject_non_fqdn_sender with the default smtpd_delay_reject = yes.
POSTFIX_NON_FQDN = (
    b"5.5.2 <mailops@localhost>: Sender address rejected: need fully-qualified address"
)


def refused_at_rcpt(recipient: str, code: int, reply: bytes) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused({recipient: (code, reply)})


def test_postfix_refusing_the_sender_at_rcpt_blames_the_sender_and_hints_at_the_fix() -> None:
    failure = describe_failure(
        refused_at_rcpt("alice@example.test", 504, POSTFIX_NON_FQDN), mailer="default"
    )

    assert failure.reason == (
        "[default] sender refused (at RCPT TO <alice@example.test>): 504 5.5.2 "
        "<mailops@localhost>: Sender address rejected: need fully-qualified address "
        f"(hint: {UNQUALIFIED_SENDER_HINT})"
    )
    assert "recipient refused" not in failure.reason
    assert (failure.smtp_code, failure.transient) == (504, False)


def test_the_unqualified_sender_hint_names_the_settings_to_change() -> None:
    assert "DEFAULT_FROM_EMAIL" in str(UNQUALIFIED_SENDER_HINT)
    assert "MAILOPS['FROM_EMAILS']" in str(UNQUALIFIED_SENDER_HINT)
    assert "mailops.W012" in str(UNQUALIFIED_SENDER_HINT)


@pytest.mark.parametrize(
    ("code", "reply", "hint"),
    [
        # Postfix, reject_unknown_sender_domain: the sender, and a temporary failure.
        (
            450,
            b"4.1.8 <ops@nowhere.invalid>: Sender address rejected: Domain not found",
            "try again later",
        ),
        # Postfix, reject_sender_login_mismatch.
        (
            553,
            b"5.7.1 <ceo@example.com>: Sender address rejected: not owned by user ops@example.com",
            "check the From address",
        ),
        # Exim after a failed sender verification callout (multi-line reply).
        (
            550,
            b"Verification failed for <ops@nowhere.invalid>\nUnrouteable address\n"
            b"Sender verify failed",
            "refuses to relay for this sender",
        ),
        # RFC 3463: X.1.8 is "bad sender's system address".
        (550, b"5.1.8 Domain of sender address does not resolve", "mailbox is unavailable"),
    ],
)
def test_other_servers_refusing_the_sender_at_rcpt_are_labelled_as_the_sender(
    code: int, reply: bytes, hint: str
) -> None:
    failure = describe_failure(refused_at_rcpt("alice@example.test", code, reply))

    assert failure.reason.startswith(f"sender refused (at RCPT TO <alice@example.test>): {code} ")
    assert hint in failure.reason
    # A qualified sender: not the unqualified-sender hint.
    assert str(UNQUALIFIED_SENDER_HINT) not in failure.reason
    assert failure.transient is (code < 500)


@pytest.mark.parametrize(
    "reply",
    [
        b"5.1.1 <bob@example.test>: Recipient address rejected: "
        b"User unknown in virtual mailbox table",
        b"5.7.1 <bob@elsewhere.test>: Relay access denied",
        # Gmail's own texts about the sender's authentication stay as they are.
        b"5.7.26 Unauthenticated email from example.com is not accepted due to domain's "
        b"DMARC policy",
    ],
)
def test_a_refused_recipient_is_still_the_recipient(reply: bytes) -> None:
    failure = describe_failure(refused_at_rcpt("bob@example.test", 550, reply))

    assert failure.reason.startswith("recipient refused <bob@example.test>: 550 ")
    assert str(UNQUALIFIED_SENDER_HINT) not in failure.reason


@pytest.mark.parametrize(
    ("code", "reply", "sender"),
    [
        # Postfix with smtpd_delay_reject = no: the same refusal, at MAIL FROM.
        (504, POSTFIX_NON_FQDN, "mailops@localhost"),
        # Sendmail: no word about qualification, but the sender has no dot.
        (
            553,
            b"5.1.8 <webmaster@localhost>... Domain of sender address "
            b"webmaster@localhost does not exist",
            "webmaster@localhost",
        ),
        (553, b"5.5.4 <mailops>... Domain name required for sender address mailops", "mailops"),
    ],
)
def test_an_unqualified_sender_refused_at_mail_from_gets_the_hint(
    code: int, reply: bytes, sender: str
) -> None:
    failure = describe_failure(smtplib.SMTPSenderRefused(code, reply, sender))

    assert failure.reason.startswith(f"sender refused <{sender}>: {code} ")
    assert failure.reason.endswith(f"(hint: {UNQUALIFIED_SENDER_HINT})")


@pytest.mark.parametrize(
    ("code", "sender", "hint"),
    [
        # A qualified sender refused: the code's own hint.
        (553, "ops@example.com", "check the From address"),
        # An unqualified sender, but a quota: not what the hint is about.
        (452, "mailops@localhost", "over a sending quota"),
    ],
)
def test_other_mail_from_refusals_keep_the_codes_hint(code: int, sender: str, hint: str) -> None:
    failure = describe_failure(smtplib.SMTPSenderRefused(code, b"5.7.1 Not allowed", sender))

    assert hint in failure.reason
    assert str(UNQUALIFIED_SENDER_HINT) not in failure.reason


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


# --- Through a send, on both send paths (``backend``) ---------------------------------


@pytest.mark.django_db
def test_an_unqualified_default_sender_refused_at_mail_from_fails_each_row_with_the_hint(
    settings: Any, faulty_smtp: FaultySMTPServer, backend: str
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": faulty_smtp.options()},
    }
    settings.DEFAULT_FROM_EMAIL = "mailops@localhost"
    sendmail_reply = (
        "553 5.1.8 <mailops@localhost>... Domain of sender address mailops@localhost does not exist"
    )
    faulty_smtp.mail_faults = [sendmail_reply, sendmail_reply]

    summary = send_test_mail(
        from_addresses(["alice@example.com", "bob@example.com"]), trigger=MailTrigger.COMMAND
    )

    rows = list(summary.logs())
    assert {(row.status, row.smtp_code) for row in rows} == {(MailStatus.FAILED, 553)}
    for row in rows:
        assert row.error.startswith("[default] sender refused <mailops@localhost>: 553 5.1.8")
        assert row.error.endswith(f"(hint: {UNQUALIFIED_SENDER_HINT})")
    assert faulty_smtp.deliveries == {}


@pytest.mark.django_db
def test_a_sender_refused_at_rcpt_through_a_send_names_the_sender(
    settings: Any, smtp_server: LoopbackSMTPServer, backend: str
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": smtp_server.options()},
    }
    smtp_server.rejected_recipients = {"bob@example.com": "550 Sender verify failed"}

    summary = send_test_mail(
        from_addresses(["alice@example.com", "bob@example.com"]), trigger=MailTrigger.COMMAND
    )

    rows = {row.recipient: row for row in summary.logs()}
    assert rows["alice@example.com"].status == MailStatus.SENT
    refused = rows["bob@example.com"]
    assert (refused.status, refused.smtp_code) == (MailStatus.FAILED, 550)
    assert refused.error.startswith(
        "[default] sender refused (at RCPT TO <bob@example.com>): 550 Sender verify failed"
    )
