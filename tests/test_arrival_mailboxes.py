"""MAILBOX_URL, MAILBOX_<ALIAS>_URL and the Gmail preset: parsed, validated, never echoed."""

from __future__ import annotations

import os

import pytest
from django.test import override_settings

from mailops.arrival.mailboxes import (
    MailboxURLError,
    mailbox_for,
    mailboxes_from_environ,
    parse_mailbox_url,
)
from mailops.mailers.environ import mailers_from_environ
from mailops.redaction import REDACTED, redact
from tests.worker_processes import manage

SECRET = "s3cret-Imap-pw"


def test_imaps_url_defaults_to_port_993_and_decodes_credentials() -> None:
    entry = parse_mailbox_url(f"imaps://me%40example.com:{SECRET}@imap.example.com", variable="V")
    assert entry == {
        "host": "imap.example.com",
        "port": 993,
        "username": "me@example.com",
        "password": SECRET,
        "ssl": True,
    }


def test_imap_url_defaults_to_port_143_and_takes_folders() -> None:
    entry = parse_mailbox_url(f"imap://ops:{SECRET}@h:1143?folders=INBOX,Junk", variable="V")
    assert (entry["port"], entry["ssl"], entry["folders"]) == (1143, False, ["INBOX", "Junk"])
    assert parse_mailbox_url(f"imap://ops:{SECRET}@h", variable="V")["port"] == 143


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"pop3://ops:{SECRET}@h", "unknown scheme 'pop3'; use imap:// or imaps://"),
        (f"imaps://ops:{SECRET}@h:99999", "is not a valid URL (check the port number)"),
        (f"imaps://ops:{SECRET}@h:port", "is not a valid URL (check the port number)"),
        ("imaps://h", "a mailbox URL needs a user name and a password"),
        ("imaps://ops@h", "a mailbox URL needs a user name and a password"),
        (
            f"imaps://ops:{SECRET}@h?folder=x",
            "unknown query parameter folder; use folders=, timeout= or authserv_id=",
        ),
        # A password with an unencoded "?" puts its tail in the query: never echoed.
        (
            f"imaps://ops:pw@h?{SECRET}",
            "unknown or malformed query parameters (not shown: if a user name or password "
            "contains '?', '&', '#', '/' or '@', percent-encode it, e.g. '?' as %3F); "
            "use folders=, timeout= or authserv_id=",
        ),
        (
            f"imaps://ops:{SECRET}@h?authserv_id=a;b",
            "authserv_id must be the receiving server's name, e.g. mx.example.com",
        ),
    ],
)
def test_bad_mailbox_url_names_the_variable_never_the_password(url: str, problem: str) -> None:
    with pytest.raises(MailboxURLError) as caught:
        mailboxes_from_environ({"MAILBOX_URL": url}, mailers={"default": {}})
    assert str(caught.value) == f"MAILBOX_URL: {problem}"
    assert SECRET not in str(caught.value)


def test_alias_variable_belongs_to_a_configured_mailer() -> None:
    environ = {"MAILBOX_BACKUP_URL": f"imaps://ops:{SECRET}@h"}
    with pytest.raises(MailboxURLError, match="MAILBOX_BACKUP_URL: there is no mailer 'backup'"):
        mailboxes_from_environ(environ, mailers={"default": {}})
    found = mailboxes_from_environ(environ, mailers={"backup": {}})
    assert found["backup"]["host"] == "h"


def test_gmail_preset_verifies_through_imap_gmail_with_the_app_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    environ = {"GMAIL_USER": "me@gmail.com", "GMAIL_APP_PASSWORD": "abcd efgh ijkl mnop"}
    mailers = mailers_from_environ(environ, outbox_dir=tmp_path).mailers
    boxes = mailboxes_from_environ(environ, mailers=mailers)
    assert boxes["gmail"] == {
        "host": "imap.gmail.com",
        "port": 993,
        "username": "me@gmail.com",
        "password": "abcdefghijklmnop",
        "ssl": True,
    }


def test_trusted_authserv_id_defaults_to_mx_google_for_gmail_else_the_imap_host() -> None:
    boxes = {
        "default": {"host": "IMAP.Example.com", "username": "u", "password": SECRET},
        "gmail": {"host": "imap.gmail.com", "username": "u", "password": SECRET},
        "own": {"host": "h", "username": "u", "password": SECRET, "authserv_id": "MX.h"},
    }
    with override_settings(MAILOPS={"MAILBOXES": boxes}):
        trusted = {alias: mailbox_for(alias).trusted_authserv_id for alias in boxes}  # type: ignore[union-attr]
    assert trusted == {"default": "imap.example.com", "gmail": "mx.google.com", "own": "mx.h"}
    url = f"imaps://ops:{SECRET}@h?authserv_id=mx.example.com"
    entry = mailboxes_from_environ({"MAILBOX_URL": url}, mailers={"default": {}})["default"]
    assert entry["authserv_id"] == "mx.example.com"


def test_imap_passwords_are_redacted_everywhere() -> None:
    boxes = {"default": {"host": "h", "username": "u", "password": SECRET}}
    with override_settings(MAILOPS={"MAILBOXES": boxes}):
        assert (
            redact(f"NO [AUTHENTICATIONFAILED] {SECRET}") == f"NO [AUTHENTICATIONFAILED] {REDACTED}"
        )
        assert SECRET not in repr(mailbox_for("default"))


def test_malformed_settings_entry_names_the_alias() -> None:
    boxes = {"default": {"host": "h", "username": "u", "password": SECRET, "port": "x"}}
    with (
        override_settings(MAILOPS={"MAILBOXES": boxes}),
        pytest.raises(MailboxURLError, match=r"MAILBOXES\"\]\['default'\]: port must be"),
    ):
        mailbox_for("default")
    with (
        override_settings(MAILOPS={"MAILBOXES": {"default": {"host": "h"}}}),
        pytest.raises(MailboxURLError, match="needs username, password"),
    ):
        mailbox_for("default")


def test_a_bad_mailbox_url_stops_start_up_with_one_line() -> None:
    env = {
        **os.environ,
        "DEBUG": "1",
        "MAILBOX_URL": f"imaps://me:{SECRET}@host:99999",
        "DJANGO_SETTINGS_MODULE": "site_config.settings",
    }
    result = manage(env, "check")
    assert result.returncode == 2
    assert (
        result.stderr
        == "Configuration error: MAILBOX_URL: is not a valid URL (check the port number)\n"
    )
    assert SECRET not in result.stderr + result.stdout
