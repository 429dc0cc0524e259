"""Where a mailer's test mails can be read back: ``MAILBOX_URL`` and friends.

``MAILBOX_URL`` belongs to the ``default`` mailer and ``MAILBOX_<ALIAS>_URL``
to the mailer ``<alias>``, parallel to ``MAILER_URL``::

    MAILBOX_URL=imaps://me%40example.com:app-password@imap.example.com
    MAILBOX_BACKUP_URL=imap://ops:secret@127.0.0.1:1143?folders=INBOX,Junk
    MAILBOX_URL=imaps://me:pw@imap.example.com?authserv_id=mx.example.com

The Gmail preset (``GMAIL_USER``/``GMAIL_APP_PASSWORD``) reads
``imaps://imap.gmail.com:993`` with the same App Password. The reference
project turns them into ``MAILOPS["MAILBOXES"]`` (a plain dict, the password
under a key named ``password`` so Django's error pages mask it); projects
without the environment variables write that dict themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from mailops.conf import from_email_for, get_setting
from mailops.exceptions import MailerURLError
from mailops.mailers.environ import (
    GMAIL_ALIAS,
    normalize_app_password,
    parse_timeout,
    split_url,
    unknown_query_keys,
)

GMAIL_IMAP_HOST = "imap.gmail.com"
# The authserv-id Gmail's receiving servers write in Authentication-Results.
GMAIL_AUTHSERV_ID = "mx.google.com"
IMAP_SCHEMES = {"imap": (False, 143), "imaps": (True, 993)}
# Seconds an IMAP connection may wait for the server before giving up.
DEFAULT_IMAP_TIMEOUT = 15.0

_ALIAS_VARIABLE = re.compile(r"^MAILBOX_(?P<alias>[A-Z0-9_]+)_URL$")
# A query key is named in an error only if it looks like one: a key that is
# really a piece of an unencoded password ("?" or "&" in it) is never echoed.
# The same rule as MAILER_URL's.
# RFC 8601's authserv-id as mailops accepts it: a host name or similar token.
_AUTHSERV_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


class MailboxURLError(MailerURLError):
    """A ``MAILBOX_*`` variable (or ``MAILOPS["MAILBOXES"]`` entry) that cannot be used."""


@dataclass(frozen=True)
class Mailbox:
    """One IMAP mailbox the test mails of a mailer can be read back from."""

    alias: str
    host: str
    port: int
    username: str
    password: str
    ssl: bool
    # Folders to search; empty means the inbox plus the junk folders found.
    folders: tuple[str, ...] = ()
    timeout: float = DEFAULT_IMAP_TIMEOUT
    # Whose Authentication-Results to believe (RFC 8601 §5): the receiving
    # server's authserv-id. Empty: the default of default_authserv_id().
    authserv_id: str = ""

    @property
    def trusted_authserv_id(self) -> str:
        """The authserv-id whose verdicts are trusted (configured, or the default)."""
        return self.authserv_id or default_authserv_id(self.host)

    def __repr__(self) -> str:
        # Never the password, whoever prints this object.
        scheme = "imaps" if self.ssl else "imap"
        return f"<Mailbox {self.alias}: {scheme}://{self.username}@{self.host}:{self.port}>"

    @property
    def address(self) -> str:
        """Where to send a test mail that should land here (the login, or the sender)."""
        if "@" in self.username:
            return self.username
        return from_email_for(self.alias)


def parse_mailbox_url(url: str, *, variable: str) -> dict[str, Any]:
    """The ``MAILOPS["MAILBOXES"]`` entry for one ``imap://`` or ``imaps://`` URL.

    ``variable`` names the setting in error messages; the URL is never echoed.
    """
    parts, port = split_url(url, variable=variable, error=MailboxURLError)
    scheme = parts.scheme.lower()
    if scheme not in IMAP_SCHEMES:
        shown = scheme or "(none)"
        raise MailboxURLError(variable, f"unknown scheme {shown!r}; use imap:// or imaps://")
    if not parts.hostname:
        raise MailboxURLError(variable, "a mailbox URL needs a host")
    if not (parts.username and parts.password):
        raise MailboxURLError(variable, "a mailbox URL needs a user name and a password")
    use_ssl, default_port = IMAP_SCHEMES[scheme]
    entry: dict[str, Any] = {
        "host": parts.hostname,
        "port": port or default_port,
        "username": unquote(parts.username),
        "password": unquote(parts.password),
        "ssl": use_ssl,
    }
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "folders" in query:
        folders = [name.strip() for name in query.pop("folders").split(",") if name.strip()]
        if not folders:
            raise MailboxURLError(variable, "folders= names no folder")
        entry["folders"] = folders
    if "timeout" in query:
        entry["timeout"] = parse_timeout(query.pop("timeout"), variable)
    if "authserv_id" in query:
        entry["authserv_id"] = _authserv_id(query.pop("authserv_id"), variable)
    if query:
        raise MailboxURLError(
            variable, f"{unknown_query_keys(query)}; use folders=, timeout= or authserv_id="
        )
    return entry


def default_authserv_id(host: str) -> str:
    """The authserv-id trusted when none is configured.

    Gmail's receiving servers sign as ``mx.google.com``; any other mailbox
    is taken to be on the host that received the mail, so its IMAP host name.
    """
    return GMAIL_AUTHSERV_ID if host.lower() == GMAIL_IMAP_HOST else host.lower()


def _authserv_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _AUTHSERV_ID.fullmatch(value.strip()):
        raise MailboxURLError(
            name, "authserv_id must be the receiving server's name, e.g. mx.example.com"
        )
    return value.strip().lower()


def gmail_mailbox(user: str, app_password: str) -> dict[str, Any]:
    """The mailbox of the Gmail preset: the same account and App Password over IMAPS."""
    return {
        "host": GMAIL_IMAP_HOST,
        "port": 993,
        "username": user.strip(),
        "password": normalize_app_password(app_password),
        "ssl": True,
    }


def mailboxes_from_environ(
    environ: Mapping[str, str], *, mailers: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``MAILOPS["MAILBOXES"]`` from ``MAILBOX_URL``, ``MAILBOX_<ALIAS>_URL`` and Gmail."""
    result: dict[str, dict[str, Any]] = {}
    default_url = environ.get("MAILBOX_URL", "").strip()
    if default_url:
        result["default"] = parse_mailbox_url(default_url, variable="MAILBOX_URL")
    for variable in sorted(environ):
        match = _ALIAS_VARIABLE.match(variable)
        if match and environ[variable].strip():
            alias = match["alias"].lower()
            if alias not in mailers:
                raise MailboxURLError(variable, f"there is no mailer {alias!r} (MAILER_*_URL)")
            result[alias] = parse_mailbox_url(environ[variable], variable=variable)
    gmail = mailers.get(GMAIL_ALIAS, {}).get("OPTIONS", {})
    user, password = environ.get("GMAIL_USER", ""), environ.get("GMAIL_APP_PASSWORD", "")
    if GMAIL_ALIAS not in result and gmail.get("host") == "smtp.gmail.com" and user and password:
        result[GMAIL_ALIAS] = gmail_mailbox(user, password)
    return result


def mailbox_for(alias: str) -> Mailbox | None:
    """The configured mailbox of mailer ``alias``, or ``None``.

    A malformed entry raises :class:`MailboxURLError` naming it (never the password).
    """
    configured: Mapping[str, Any] = get_setting("MAILBOXES") or {}
    entry = configured.get(alias)
    if entry is None:
        return None
    return _mailbox(alias, entry)


def verifiable_aliases() -> list[str]:
    """The mailers that have a mailbox, sorted."""
    return sorted(get_setting("MAILBOXES") or {})


def _mailbox(alias: str, entry: Any) -> Mailbox:
    name = f'MAILOPS["MAILBOXES"][{alias!r}]'
    if not isinstance(entry, Mapping):
        raise MailboxURLError(name, "must be a dict (host, port, username, password, ssl)")
    missing = [key for key in ("host", "username", "password") if not entry.get(key)]
    if missing:
        raise MailboxURLError(name, f"needs {', '.join(missing)}")
    use_ssl = bool(entry.get("ssl", True))
    port = entry.get("port") or IMAP_SCHEMES["imaps" if use_ssl else "imap"][1]
    if not isinstance(port, int) or not 0 < port < 65536:
        raise MailboxURLError(name, "port must be a number from 1 to 65535")
    folders = entry.get("folders") or ()
    if isinstance(folders, str) or not all(isinstance(f, str) and f for f in folders):
        raise MailboxURLError(name, "folders must be a list of folder names")
    authserv_id = entry.get("authserv_id")
    return Mailbox(
        alias=alias,
        host=str(entry["host"]),
        port=port,
        username=str(entry["username"]),
        password=str(entry["password"]),
        ssl=use_ssl,
        folders=tuple(folders),
        timeout=float(entry.get("timeout") or DEFAULT_IMAP_TIMEOUT),
        authserv_id=_authserv_id(authserv_id, name) if authserv_id else "",
    )
