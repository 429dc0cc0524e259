"""A localised mailbox in a real Dovecot: non-ASCII junk folders and a non-ASCII password.

The folders are stored the way Dovecot stores them (Maildir++ directories in
modified UTF-7, written out by hand here) and listed by Dovecot itself:
"Courrier indésirable" and "Junk-E-Mail" are junk by their names (no
special-use flag), "Indésirables" only by its ``\\Junk`` flag. The account's
password is not ASCII, so the login goes through ``AUTHENTICATE PLAIN``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from mailops.models import ArrivalStatus, MailLog
from tests.commands import run_sendtestmail
from tests.imap_server import DeliveringSMTPServer, DovecotServer, start_dovecot

pytestmark = pytest.mark.django_db(transaction=False)

PASSWORD = "Pässwört-€-Geheim"
FOLDERS = {
    "Courrier indésirable": "Courrier ind&AOk-sirable",
    "Junk-E-Mail": "Junk-E-Mail",
    "Indésirables": "Ind&AOk-sirables",
    "Archives reçues": "Archives re&AOc-ues",
}


@pytest.fixture(scope="module")
def localised_dovecot() -> Iterator[DovecotServer]:
    server = start_dovecot(
        password=PASSWORD, folders=FOLDERS, special_use={"Indésirables": "\\Junk"}
    )
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def delivering(localised_dovecot: DovecotServer) -> Iterator[DeliveringSMTPServer]:
    server = DeliveringSMTPServer(dovecot=localised_dovecot, tls_mode="none")
    yield server
    server.stop()


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


@pytest.mark.parametrize("folder", ["Courrier indésirable", "Junk-E-Mail", "Indésirables"])
def test_a_localised_junk_folder_is_found(
    delivering: DeliveringSMTPServer, localised_dovecot: DovecotServer, folder: str
) -> None:
    delivering.junk_recipients.add("spamtrap@example.com")
    delivering.junk_folder = folder
    with settings_for(delivering, localised_dovecot):
        code, _out, err = run_sendtestmail(
            "--verify", "--verify-timeout", "10", "spamtrap@example.com"
        )
    assert code == 1
    assert f"landed in junk folder {folder} after" in err
    log = MailLog.objects.get()
    assert (log.arrival, log.arrival_folder) == (ArrivalStatus.JUNK, folder)


def test_a_non_ascii_password_and_a_configured_non_ascii_folder_work(
    delivering: DeliveringSMTPServer, localised_dovecot: DovecotServer
) -> None:
    delivering.junk_recipients.add("archive@example.com")
    delivering.junk_folder = "Archives reçues"
    with settings_for(delivering, localised_dovecot, folders=["INBOX", "Archives reçues"]):
        code, _out, err = run_sendtestmail(
            "--verify", "--verify-timeout", "10", "archive@example.com", "ops@example.com"
        )
    assert code == 0, err
    arrivals = dict(MailLog.objects.values_list("recipient", "arrival_folder"))
    assert arrivals == {"archive@example.com": "Archives reçues", "ops@example.com": "INBOX"}
    # Not a junk folder, by name or flag: both count as arrived.
    assert set(MailLog.objects.values_list("arrival", flat=True)) == {ArrivalStatus.INBOX}


def test_a_missing_configured_folder_is_named_as_people_read_it(
    delivering: DeliveringSMTPServer, localised_dovecot: DovecotServer
) -> None:
    with settings_for(delivering, localised_dovecot, folders=["Boîte de réception"]):
        code, _out, err = run_sendtestmail("--verify", "--verify-timeout", "10")
    assert code == 1
    assert "folder Boîte de réception not on the IMAP server; it has: Archives reçues" in err
