"""Against a real Postfix 3.7 submission port: STARTTLS required, AUTH after it (Dovecot SASL).

The issue's interop cases on the port a provider's 587 looks like
(``postfix_submission`` in :mod:`tests.postfix_server`), through the public
paths: ``send_test_mail``, ``verify_connection`` and ``manage.py``.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from mailops.mailers.connection import verify_connection
from mailops.mailers.errors import UNQUALIFIED_SENDER_HINT
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.backends import DJANGO_SMTP
from tests.postfix_server import REFUSED, PostfixServer, send_past_the_error_limit

pytestmark = pytest.mark.django_db

CLIENT = "localhost[127.0.0.1]"
# What Postfix logs when a client leaves properly after a failed AUTH (PLAIN, then LOGIN).
QUIT_AFTER_FAILED_AUTH = f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=0/2 quit=1"
# What a send and the connection check both say when this port sees no STARTTLS.
AUTH_BEFORE_STARTTLS = (
    "the server does not offer AUTH before STARTTLS, and the mailer does not use TLS: "
    "use smtp+tls:// (use_tls=True)"
)


def use_submission(
    settings: Any, postfix: PostfixServer, *, backend: str = DJANGO_SMTP, **options: Any
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": postfix.submission_options(**options)},
    }
    settings.DEFAULT_FROM_EMAIL = "ops@mailops-test.localhost"


def test_smtp_tls_with_the_right_password_delivers_over_tls_and_sasl(
    settings: Any, postfix_submission: PostfixServer
) -> None:
    use_submission(settings, postfix_submission)
    out = StringIO()

    call_command("sendtestmail", "alice@example.test", stdout=out)

    row = MailLog.objects.get(recipient="alice@example.test")
    assert row.status == MailStatus.SENT
    assert row.error == ""
    assert "1 sent, 0 failed" in out.getvalue()
    assert postfix_submission.deliveries(1) == {"alice@example.test": 1}
    log = postfix_submission.wait_for_log(f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=1")
    assert f"Anonymous TLS connection established from {CLIENT}: TLSv1." in log
    assert f"client={CLIENT}, sasl_method=PLAIN, sasl_username=ops@example.com" in log


def test_the_connection_check_negotiates_starttls_and_signs_in(
    settings: Any, postfix_submission: PostfixServer
) -> None:
    use_submission(settings, postfix_submission)
    out = StringIO()

    call_command("sendtestmail", "--check", stdout=out)

    assert "authenticated as ops@example.com" in out.getvalue()
    check_row = MailLog.objects.get(status=MailStatus.CHECKED)
    assert "STARTTLS TLSv1." in check_row.subject
    postfix_submission.wait_for_log(f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=1 quit=1")


def test_plain_smtp_with_a_password_gets_the_smtp_tls_advice_from_send_and_check(
    settings: Any, postfix_submission: PostfixServer
) -> None:
    # smtpd_tls_auth_only: before STARTTLS this port offers no AUTH at all.
    use_submission(settings, postfix_submission, use_tls=False)
    assert postfix_submission.submission is not None
    password = postfix_submission.submission.password

    summary = send_test_mail(from_addresses(["alice@example.test"]), trigger=MailTrigger.COMMAND)
    result = verify_connection("default")

    row = summary.logs().get()
    assert row.status == MailStatus.FAILED
    check_row = MailLog.objects.get(pk=result.log_id)
    assert not result.ok
    # One classifier: the send knows what the check knows (STARTTLS offered, no AUTH).
    assert result.error == f"AUTH: {AUTH_BEFORE_STARTTLS}"
    assert row.error == f"[default] {AUTH_BEFORE_STARTTLS}"
    assert check_row.error == result.error
    for error in (row.error, result.error):
        assert "implicit TLS" not in error
        assert ".." not in error
    for text in (row.error, row.subject, check_row.error, check_row.subject, check_row.body):
        assert password not in text
    # Both left the way Postfix likes (the fixture's readiness probe is not in this log).
    log = postfix_submission.wait_for_log(f"disconnect from {CLIENT} ehlo=1 quit=1", count=2)
    assert "lost connection" not in log
    assert postfix_submission.deliveries(0, timeout=0) == {}


def test_a_wrong_password_over_starttls_is_an_authentication_failure_and_the_check_quits(
    settings: Any, postfix_submission: PostfixServer
) -> None:
    wrong = "not-the-password-7731"
    use_submission(settings, postfix_submission, password=wrong)

    summary = send_test_mail(from_addresses(["alice@example.test"]), trigger=MailTrigger.COMMAND)
    result = verify_connection("default")

    row = summary.logs().get()
    assert (row.status, row.smtp_code) == (MailStatus.FAILED, 535)
    assert "authentication failed: 535 5.7.8" in row.error
    assert "username and password not accepted" in row.error
    assert "App Password" in row.error
    assert not result.ok
    assert result.authenticated is False
    assert result.error.startswith("AUTH: authentication failed: 535")
    assert "username and password not accepted" in result.error
    check_row = MailLog.objects.get(pk=result.log_id)
    for text in (row.error, row.subject, check_row.error, check_row.subject, check_row.body):
        assert wrong not in text
    # The send's connection and the check's both end with QUIT after the refusals.
    log = postfix_submission.wait_for_log(QUIT_AFTER_FAILED_AUTH, count=2)
    assert "SASL PLAIN authentication failed" in log
    assert "lost connection after AUTH" not in log


def test_the_default_unqualified_sender_is_refused_and_manage_py_check_warns(
    settings: Any, postfix_submission: PostfixServer
) -> None:
    use_submission(settings, postfix_submission)
    # The reference project's default sender.
    settings.DEFAULT_FROM_EMAIL = "mailops@localhost"
    recipients = ["alice@example.test", "bob@example.test"]

    summary = send_test_mail(from_addresses(recipients), trigger=MailTrigger.COMMAND)

    rows = list(summary.logs())
    assert {(row.status, row.smtp_code) for row in rows} == {(MailStatus.FAILED, 504)}
    for row in rows:
        # Postfix refuses the sender at RCPT (smtpd_delay_reject): the sender's fault.
        assert row.error.startswith(
            f"[default] sender refused (at RCPT TO <{row.recipient}>): "
            "504 5.5.2 <mailops@localhost>: Sender address rejected: need fully-qualified address"
        )
        assert "recipient refused" not in row.error
        assert row.error.endswith(f"(hint: {UNQUALIFIED_SENDER_HINT})")
        assert "DEFAULT_FROM_EMAIL" in row.error
    postfix_submission.wait_for_log("Sender address rejected", count=2)
    assert postfix_submission.deliveries(0, timeout=0) == {}

    err = StringIO()
    call_command("check", stdout=StringIO(), stderr=err)

    assert "(mailops.W012) Mailer 'default'" in err.getvalue()
    assert "'mailops@localhost'" in err.getvalue()
    assert "reject_non_fqdn_sender" in err.getvalue()


def test_refused_recipients_past_the_error_limit_then_a_fresh_starttls_and_auth(
    settings: Any, postfix_submission: PostfixServer, backend: str
) -> None:
    # The message after Postfix hangs up needs a new connection: STARTTLS, AUTH.
    use_submission(settings, postfix_submission, backend=backend)

    rows, _log = send_past_the_error_limit(postfix_submission)

    assert "Relay access denied" in rows[REFUSED[0]].error
    # Two connections, each with STARTTLS and AUTH; the second one ends with QUIT.
    log = postfix_submission.wait_for_log(
        f"disconnect from {CLIENT} ehlo=2 starttls=1 auth=1", count=2
    )
    disconnects = [line for line in log.splitlines() if "disconnect from" in line]
    assert "quit=1" in disconnects[-1]
    assert "too many errors" in log
    assert log.count(f"Anonymous TLS connection established from {CLIENT}") == 2
    assert log.count("sasl_method=PLAIN") == 2
    assert "lost connection after RCPT" not in log


def test_plain_smtp_without_a_password_is_refused_once_and_every_session_quits(
    settings: Any, postfix_submission: PostfixServer, backend: str
) -> None:
    # STARTTLS required: MAIL gets 530, and so does RSET. One connection for
    # the chunk, not a new one per retry; each message is refused once.
    use_submission(
        settings, postfix_submission, backend=backend, use_tls=False, username="", password=""
    )
    recipients = ["alice@example.test", "bob@example.test", "carol@example.test"]

    summary = send_test_mail(from_addresses(recipients), trigger=MailTrigger.COMMAND)

    rows = list(summary.logs())
    assert {(row.status, row.smtp_code, row.attempts) for row in rows} == {
        (MailStatus.FAILED, 530, 1)
    }
    assert all("530" in row.error and "STARTTLS" in row.error for row in rows)
    log = postfix_submission.wait_for_log("disconnect from")
    assert log.count(f"]: connect from {CLIENT}") == 1
    assert "lost connection" not in log
    # MAIL (on the bytes path in one group with RCPT and DATA: Postfix offers
    # PIPELINING), then RSET, refused too: the other messages fail unsent, and QUIT.
    group = "mail=0/1 rcpt=0/1 data=0/1" if backend == DJANGO_SMTP else "mail=0/1"
    assert f"disconnect from {CLIENT} ehlo=1 {group} rset=0/1 quit=1" in log
    assert postfix_submission.deliveries(0, timeout=0) == {}
