"""Proof of arrival against an IMAP server that drips, floods, echoes and mislabels.

Each test here failed before the fix it covers: a dripping greeting held
``--verify`` for as long as the server liked, a huge literal ended in
``MemoryError``, an escaped password was shown, a non-ASCII one stopped the
command after the mail was sent, folder names sent as literals or in
modified UTF-7 were never found. Deadlines are short (2 s) and only the
outcome is asserted, never how long it took.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from mailops.arrival.folders import decode_folder_name, encode_folder_name
from mailops.models import ArrivalStatus, MailLog
from tests.admin_fixtures import shown_messages
from tests.commands import all_columns, run_sendtestmail
from tests.hostile_imap import HostileIMAPServer
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db(transaction=False)


def settings_for(smtp: LoopbackSMTPServer, imap: HostileIMAPServer, **mailbox: Any) -> Any:
    return override_settings(
        MAILERS={
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": smtp.options(),
            }
        },
        MAILOPS={"DEFAULT_MAILER": "default", "MAILBOXES": {"default": imap.mailbox(**mailbox)}},
    )


def test_a_greeting_dripped_byte_by_byte_ends_at_the_verify_timeout(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.drip = True
    with settings_for(smtp_server, hostile_imap):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "2")
    assert code == 1
    assert f"IMAP server 127.0.0.1:{hostile_imap.port} did not answer in time" in err
    log = MailLog.objects.get()
    assert log.arrival == ArrivalStatus.ERROR
    assert "did not answer in time" in log.arrival_error


def test_send_and_verify_in_the_admin_ends_by_verify_admin_timeout(
    client: Client, superuser: Any, smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    client.force_login(superuser)
    hostile_imap.behaviour.drip = True
    with (
        settings_for(smtp_server, hostile_imap),
        override_settings(
            MAILOPS={
                "DEFAULT_MAILER": "default",
                "MAILBOXES": {"default": hostile_imap.mailbox()},
                "VERIFY_ADMIN_TIMEOUT": 2,
            }
        ),
    ):
        response = client.post(reverse("admin:mailops_mailers_verify"), {"alias": "default"})
    assert response.status_code == 302
    log = MailLog.objects.get()
    assert log.arrival == ArrivalStatus.ERROR
    [(level, text)] = shown_messages(response)
    assert level == "error"
    assert text.startswith(f"Not verified: IMAP server 127.0.0.1:{hostile_imap.port} did not")


def test_over_tls_the_mailbox_is_read_and_a_drip_still_ends_at_the_deadline(
    smtp_server: LoopbackSMTPServer, hostile_imaps: HostileIMAPServer
) -> None:
    with settings_for(smtp_server, hostile_imaps):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 0, err
    hostile_imaps.behaviour.drip = True
    with settings_for(smtp_server, hostile_imaps):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "2")
    assert code == 1
    assert f"IMAP server 127.0.0.1:{hostile_imaps.port} did not answer in time" in err


def test_a_tls_handshake_never_answered_ends_at_the_deadline(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    # Listens (the kernel completes the TCP handshake) but never answers the ClientHello.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    try:
        with settings_for(smtp_server, hostile_imap, port=port, ssl=True):
            code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "2")
    finally:
        silent.close()
    assert code == 1
    assert f"IMAP server 127.0.0.1:{port} did not answer in time" in err


def test_a_huge_literal_is_refused_before_it_is_read_and_the_row_marked(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.fetch_literal = 1_000_000_000_000
    with settings_for(smtp_server, hostile_imap):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "sent a literal of 1,000,000,000,000 bytes" in err
    assert "Traceback" not in err
    assert "MemoryError" not in err
    log = MailLog.objects.get()
    assert log.arrival == ArrivalStatus.ERROR
    assert "literal of 1,000,000,000,000 bytes" in log.arrival_error


def test_a_line_longer_than_the_cap_is_refused(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.greeting = b"* OK " + b"x" * 200_000 + b"\r\n"
    with settings_for(smtp_server, hostile_imap):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "sent a line longer than 65,536 bytes" in err
    assert MailLog.objects.get().arrival == ArrivalStatus.ERROR


@pytest.mark.parametrize("as_json", [False, True])
def test_a_password_with_quotes_and_backslashes_never_shows_even_echoed_escaped(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer, as_json: bool
) -> None:
    password = 'pa"ss\\word-Secret42'
    hostile_imap.behaviour.echo_login = True
    args = ["--verify", "--verify-timeout", "10"] + (["--json"] if as_json else [])
    with settings_for(smtp_server, hostile_imap, password=password):
        code, out, err = run_sendtestmail(*args)
    assert code == 1
    shown = out + err
    log = MailLog.objects.get()
    # However the server escaped it, every form holds this piece.
    for text in (shown, all_columns(log)):
        assert "Secret42" not in text
        assert "word" not in text
    # In words: the server's reason, not Python's bytes form.
    assert "refused: [AUTHENTICATIONFAILED] refused: LOGIN" in log.arrival_error
    assert "b'" not in shown
    assert "\\r" not in shown
    if as_json:
        [message] = json.loads(out)["messages"]
        assert message["arrival"] == "error"


def test_a_non_ascii_password_logs_in_with_authenticate_plain(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    with settings_for(smtp_server, hostile_imap, password="Pässwört-€"):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 0, err
    assert hostile_imap.behaviour.logins == [("ops@example.com", "Pässwört-€")]
    assert MailLog.objects.get().arrival == ArrivalStatus.INBOX


def test_folder_names_sent_as_literals_in_modified_utf7_are_decoded_and_examined_encoded(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.list_lines = [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren) "/" {24}\r\nCourrier ind&AOk-sirable\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" {13}\r\nPosta \\ "bad"\r\n',
    ]
    with settings_for(smtp_server, hostile_imap, folders=["Courrier indésirable"]):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "landed in junk folder Courrier indésirable" in err
    assert hostile_imap.behaviour.examined == [b'"Courrier ind&AOk-sirable"']
    log = MailLog.objects.get()
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.JUNK, "Courrier indésirable")


def test_a_junk_folder_flagged_in_a_literal_is_searched(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.list_lines = [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" {13}\r\nPosta \\ "bad"\r\n',
    ]
    with settings_for(smtp_server, hostile_imap):
        run_sendtestmail("--verify", "--verify-timeout", "10")
    # Found at once in INBOX; the \Junk folder named by a literal was next in line.
    assert MailLog.objects.get().arrival == ArrivalStatus.INBOX
    with settings_for(smtp_server, hostile_imap, folders=['Posta \\ "bad"']):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert 'landed in junk folder Posta \\ "bad"' in err
    assert hostile_imap.behaviour.examined[-1] == b'"Posta \\\\ \\"bad\\""'


def test_special_use_flags_are_asked_for_when_a_plain_list_leaves_them_out(
    smtp_server: LoopbackSMTPServer, hostile_imap: HostileIMAPServer
) -> None:
    hostile_imap.behaviour.list_lines = [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren) "/" Quarantaine\r\n',
    ]
    hostile_imap.behaviour.special_use_lines = [
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
        b'* LIST (\\HasNoChildren \\Junk) "/" Quarantaine\r\n',
    ]
    with settings_for(smtp_server, hostile_imap, folders=["Quarantaine"]):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "landed in junk folder Quarantaine" in err


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("Courrier indésirable", "Courrier ind&AOk-sirable"),
        ("Junk-E-Mail", "Junk-E-Mail"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("迷惑メール", "&j,dg0TDhMPww6w-"),
        ("Нежелательная почта", "&BB0ENQQ2BDUEOwQwBEIENQQ7BEwEPQQwBE8- &BD8EPgRHBEIEMA-"),
    ],
)
def test_modified_utf7_folder_names_round_trip(name: str, wire: str) -> None:
    assert encode_folder_name(name) == wire
    assert decode_folder_name(wire) == name


def test_a_name_that_is_not_modified_utf7_is_kept_as_it_came() -> None:
    assert decode_folder_name("R&D") == "R&D"
    assert decode_folder_name("&%%%-") == "&%%%-"
