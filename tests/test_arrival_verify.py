"""``sendtestmail --verify``: send, read it back from a real Dovecot, record and exit honestly."""

from __future__ import annotations

import imaplib
import json
import socket
import time
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import override_settings

from mailops.models import ArrivalStatus, MailLog
from tests.commands import all_columns, run_sendtestmail
from tests.imap_server import DeliveringSMTPServer, DovecotServer

pytestmark = pytest.mark.django_db(transaction=False)


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


def test_verify_finds_the_mail_in_the_inbox_and_records_arrival(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    with settings_for(delivering_smtp_server, dovecot_server):
        code, out, err = run_sendtestmail("--verify", "--verify-timeout", "10", "--json")
    assert code == 0, err
    payload = json.loads(out)
    [message] = payload["messages"]
    assert message["arrival"] == "inbox"
    assert message["recipient"] == dovecot_server.username
    assert message["authentication_results"] == "spf=pass dkim=pass dmarc=pass"
    assert message["latency_seconds"] >= 0
    log = MailLog.objects.get(pk=message["log_id"])
    assert log.arrival == ArrivalStatus.INBOX
    assert log.arrival_folder == "INBOX"
    assert log.arrived_at is not None
    assert log.verified_at is not None
    assert log.authentication_results == "spf=pass dkim=pass dmarc=pass"


def test_mail_filed_as_spam_exits_1_and_names_the_junk_folder(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.junk_recipients.add("spamtrap@example.com")
    delivering_smtp_server.authentication_results = "mx.mailops.test; spf=fail; dkim=none"
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail(
            "--verify", "--verify-timeout", "10", "spamtrap@example.com"
        )
    assert code == 1
    assert "landed in junk folder Junk" in err
    assert "spf=fail dkim=none" in err
    assert "Hint:" in err
    log = MailLog.objects.get(recipient="spamtrap@example.com")
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.JUNK, "Junk")
    assert log.status == "sent"


def test_mail_that_never_arrives_exits_1_after_the_timeout(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.lost_recipients.add("void@example.com")
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "2", "void@example.com")
    assert code == 1
    assert "not in ops@example.com's mailbox after 2 s" in err
    log = MailLog.objects.get(recipient="void@example.com")
    assert log.arrival == ArrivalStatus.MISSING
    assert log.arrived_at is None
    assert log.verified_at is not None
    assert "not in" in log.arrival_error


def test_refused_imap_login_is_reported_without_the_password(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    wrong = "wrong-Imap-Pa55word"
    with settings_for(delivering_smtp_server, dovecot_server, password=wrong):
        code, out, err = run_sendtestmail("--verify", "--verify-timeout", "10", "--json")
    assert code == 1
    assert "IMAP login as ops@example.com refused" in err
    assert "Traceback" not in err
    log = MailLog.objects.get()
    assert log.arrival == ArrivalStatus.ERROR
    assert "refused" in log.arrival_error
    for text in (out, err, all_columns(log)):
        assert wrong not in text


def test_imap_server_down_is_an_error_row_not_a_traceback(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer, closed_port: int
) -> None:
    with settings_for(delivering_smtp_server, dovecot_server, port=closed_port):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "1")
    assert code == 1
    assert f"cannot connect to IMAP server 127.0.0.1:{closed_port}" in err
    log = MailLog.objects.get()
    assert log.arrival == ArrivalStatus.ERROR
    assert "cannot connect" in log.arrival_error


def test_a_configured_folder_the_server_lacks_is_named(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    with settings_for(delivering_smtp_server, dovecot_server, folders=["INBOX", "Spam"]):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "5")
    assert code == 1
    assert "folder Spam not on the IMAP server; it has: Bulk, INBOX, Junk" in err
    assert MailLog.objects.get().arrival == ArrivalStatus.ERROR


def test_configured_folders_are_searched_and_junk_recognised(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.junk_recipients.add("flagged@example.com")
    with settings_for(delivering_smtp_server, dovecot_server, folders=["Junk", "INBOX"]):
        code, _out, _err = run_sendtestmail(
            "--verify", "--verify-timeout", "5", "flagged@example.com"
        )
    assert code == 1
    assert MailLog.objects.get().arrival_folder == "Junk"


def test_verify_reads_without_marking_anything_seen(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 0, err
    message_id = MailLog.objects.get().message_id
    client = imaplib.IMAP4(dovecot_server.host, dovecot_server.port)
    client.login(dovecot_server.username, dovecot_server.password)
    client.select("INBOX", readonly=True)
    _status, data = client.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"', "UNSEEN")
    client.logout()
    assert data[0].split(), "the test mail should still be unread"


def test_a_mailer_without_mailbox_is_a_usage_error() -> None:
    code, _out, err = run_sendtestmail("--verify")
    assert code == 2
    assert "MAILBOX_URL: not set" in err
    assert not MailLog.objects.exists()


def test_verify_timeout_alone_is_refused() -> None:
    code, _out, err = run_sendtestmail("--verify-timeout", "5", "a@example.com")
    assert code == 2
    assert "--verify-timeout needs --verify" in err


def test_the_canary_shows_on_the_health_endpoint(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer, client: Any
) -> None:
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
        assert code == 0, err
        with override_settings(MAILOPS={**settings.MAILOPS, "HEALTH_TOKEN": "t0ken-for-tests"}):
            response = client.get("/mail/health/", HTTP_AUTHORIZATION="Bearer t0ken-for-tests")
    assert response.status_code == 200
    default = response.json()["mailers"]["default"]
    assert (default["state"], default["last_arrival"]) == ("ok", "inbox")
    assert default["last_arrival_latency_seconds"] >= 0


def test_a_message_the_mailer_refuses_is_not_waited_for(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.rejected_recipients["nobody@example.com"] = "550 5.1.1 No such user"
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail(
            "--verify", "--verify-timeout", "30", "nobody@example.com"
        )
    assert code == 1
    assert err.startswith("Not sent:")
    assert "550" in err
    assert MailLog.objects.get().arrival == ""


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_the_wait_shows_a_progress_line_on_a_terminal(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.lost_recipients.add("slow@example.com")
    terminal = Terminal()
    with settings_for(delivering_smtp_server, dovecot_server), pytest.raises(CommandError):
        call_command(
            "sendtestmail",
            "--verify",
            "--verify-timeout",
            "2",
            "slow@example.com",
            stdout=StringIO(),
            stderr=terminal,
        )
    shown = terminal.getvalue()
    assert "\rWaiting for the test mail to arrive: 0 s of 2 s" in shown
    assert shown.endswith("\n")


def test_an_imap_server_that_never_answers_times_out_into_an_error_row(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    # Listens (the kernel completes the handshake) but never sends a greeting.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        with settings_for(delivering_smtp_server, dovecot_server, port=port, timeout=0.5):
            code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "1")
    finally:
        silent.close()
    assert code == 1
    assert f"IMAP server 127.0.0.1:{port} did not answer in time" in err
    assert "Traceback" not in err
    assert MailLog.objects.get().arrival == ArrivalStatus.ERROR


def test_a_junk_folder_is_found_by_its_special_use_flag(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    delivering_smtp_server.junk_recipients.add("bulk@example.com")
    delivering_smtp_server.junk_folder = "Bulk"
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10", "bulk@example.com")
    assert code == 1
    assert "landed in junk folder Bulk" in err
    log = MailLog.objects.get()
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.JUNK, "Bulk")


def test_several_messages_are_read_back_in_one_imap_session_per_look(
    delivering_smtp_server: DeliveringSMTPServer, dovecot_server: DovecotServer
) -> None:
    log = dovecot_server.directory / "dovecot.log"

    def logins() -> int:
        return log.read_text(errors="replace").count("Login: user=") if log.exists() else 0

    delivering_smtp_server.junk_recipients.add("c@example.com")
    before = logins()
    with settings_for(delivering_smtp_server, dovecot_server):
        code, _out, err = run_sendtestmail(
            "--verify", "--verify-timeout", "10", "a@example.com", "b@example.com", "c@example.com"
        )

    assert code == 1, err  # c@ landed in junk
    arrivals = dict(MailLog.objects.values_list("recipient", "arrival"))
    assert arrivals == {"a@example.com": "inbox", "b@example.com": "inbox", "c@example.com": "junk"}
    # All three were there at the first look: one login, not one per message.
    deadline = time.monotonic() + 5
    while logins() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logins() - before == 1


def test_a_verification_stopped_by_a_surprise_still_marks_the_row(
    delivering_smtp_server: DeliveringSMTPServer,
    dovecot_server: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def surprise(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mailops.arrival.verify.find_messages", surprise)
    with settings_for(delivering_smtp_server, dovecot_server), pytest.raises(KeyboardInterrupt):
        run_sendtestmail("--verify", "--verify-timeout", "10")
    log = MailLog.objects.get()
    assert (log.arrival, log.arrival_error) == (
        ArrivalStatus.ERROR,
        "the verification stopped before it ended",
    )
