"""Find one message by its Message-ID in an IMAP mailbox, read-only.

Every folder is opened with ``EXAMINE`` (read-only) and headers are read
with ``BODY.PEEK``, so nothing is marked seen, moved or deleted: the
mailbox is the user's own. Junk folders are found through the special-use
flag ``\\Junk`` (RFC 6154) where the server shows it, else by their usual
names.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import mktime

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.arrival.mailboxes import Mailbox
from mailops.redaction import redact

INBOX = "INBOX"
# Searched when present, whether or not the server flags them \Junk.
JUNK_NAMES = ("Junk", "Spam", "[Gmail]/Spam", "Junk E-mail", "INBOX.Junk", "INBOX.Spam")

_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<sep>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.+)$')


class MailboxError(Exception):
    """The mailbox could not be read; ``str()`` is a one-line reason, secrets redacted."""

    def __init__(self, reason: str, *, permanent: bool = True) -> None:
        super().__init__(reason)
        # A refused login or a missing folder will not heal by polling again.
        self.permanent = permanent


@dataclass(frozen=True)
class FoundMessage:
    """Where the message was, what the server said about it."""

    folder: str
    junk: bool
    # When the receiving server stored it (IMAP INTERNALDATE), if it said.
    stored_at: datetime | None
    # Raw Authentication-Results header values, topmost (the receiver's) first.
    authentication_results: list[str]


def find_messages(mailbox: Mailbox, message_ids: Sequence[str]) -> dict[str, FoundMessage]:
    """Search ``mailbox``'s folders for each of ``message_ids``: ``{message_id: where}``.

    One connection and one login for all of them (a batch is read back in
    one session per look, not one per message). Ids not found (yet) are left
    out. Raises :class:`MailboxError` when the server cannot be reached,
    refuses the login or lacks a configured folder.
    """
    client = _connect(mailbox)
    found: dict[str, FoundMessage] = {}
    try:
        _login(client, mailbox)
        for folder, junk in _folders(client, mailbox):
            _select(client, folder)
            for message_id in message_ids:
                if message_id in found:
                    continue
                hit = _search(client, message_id)
                if hit is not None:
                    stored_at, headers = hit
                    found[message_id] = FoundMessage(
                        folder=folder,
                        junk=junk,
                        stored_at=stored_at,
                        authentication_results=headers,
                    )
            if len(found) == len(set(message_ids)):
                break
        return found
    except (imaplib.IMAP4.error, OSError) as error:
        raise MailboxError(_reason(mailbox, error), permanent=False) from None
    finally:
        _logout(client)


def _connect(mailbox: Mailbox) -> imaplib.IMAP4:
    where = f"{mailbox.host}:{mailbox.port}"
    try:
        if mailbox.ssl:
            return imaplib.IMAP4_SSL(
                mailbox.host,
                mailbox.port,
                ssl_context=ssl.create_default_context(),
                timeout=mailbox.timeout,
            )
        return imaplib.IMAP4(mailbox.host, mailbox.port, timeout=mailbox.timeout)
    except TimeoutError:
        raise MailboxError(
            _("IMAP server %(server)s did not answer in time") % {"server": where},
            permanent=False,
        ) from None
    except ssl.SSLError as error:
        raise MailboxError(
            _("TLS with IMAP server %(server)s failed: %(reason)s")
            % {"server": where, "reason": error.reason}
        ) from None
    except (OSError, imaplib.IMAP4.error) as error:
        raise MailboxError(
            _("cannot connect to IMAP server %(server)s: %(reason)s")
            % {"server": where, "reason": _reason(mailbox, error)},
            permanent=False,
        ) from None


def _login(client: imaplib.IMAP4, mailbox: Mailbox) -> None:
    try:
        client.login(mailbox.username, mailbox.password)
    except imaplib.IMAP4.error as error:
        raise MailboxError(
            _("IMAP login as %(username)s refused: %(reason)s")
            % {"username": mailbox.username, "reason": _reason(mailbox, error)}
        ) from None


def _folders(client: imaplib.IMAP4, mailbox: Mailbox) -> list[tuple[str, bool]]:
    """``[(folder, is_junk)]`` in search order: the inbox first."""
    listed = _list(client)
    junk_flagged = {name for name, flags in listed.items() if "\\junk" in flags}
    known_junk = {name.lower() for name in JUNK_NAMES}
    if mailbox.folders:
        missing = [name for name in mailbox.folders if name not in listed and name != INBOX]
        if missing:
            raise MailboxError(
                ngettext(
                    "folder %(missing)s not on the IMAP server; it has: %(listed)s",
                    "folders %(missing)s not on the IMAP server; it has: %(listed)s",
                    len(missing),
                )
                % {
                    "missing": ", ".join(missing),
                    "listed": ", ".join(sorted(listed)) or _("(none)"),
                }
            )
        return [
            (name, name in junk_flagged or name.lower() in known_junk) for name in mailbox.folders
        ]
    junk = sorted(junk_flagged | {name for name in listed if name.lower() in known_junk})
    return [(INBOX, False)] + [(name, True) for name in junk if name != INBOX]


def _list(client: imaplib.IMAP4) -> dict[str, set[str]]:
    """Every folder name with its lower-cased flags."""
    status, lines = client.list()
    if status != "OK":
        raise MailboxError(_("the IMAP server refused to list its folders"), permanent=False)
    folders: dict[str, set[str]] = {}
    for line in lines:
        if not isinstance(line, bytes):
            # A folder name sent as a literal (unusual characters): not one we look for.
            continue
        match = _LIST_LINE.match(line)
        if match is None:
            continue
        name = match["name"].decode("utf-8", "replace")
        if name.startswith('"') and name.endswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        folders[name] = {flag.lower() for flag in match["flags"].decode().split()}
    return folders


def _select(client: imaplib.IMAP4, folder: str) -> None:
    status, _data = client.select(_quote(folder), readonly=True)
    if status != "OK":
        raise MailboxError(
            _("cannot open folder %(folder)s on the IMAP server") % {"folder": folder}
        )


def _search(client: imaplib.IMAP4, message_id: str) -> tuple[datetime | None, list[str]] | None:
    """The selected folder's newest message with ``message_id``: its date and verdict headers."""
    status, data = client.uid("SEARCH", "HEADER", "Message-ID", _quote(message_id))
    uids = data[0].split() if status == "OK" and data and data[0] else []
    if not uids:
        return None
    status, data = client.uid("FETCH", uids[-1], "(INTERNALDATE BODY.PEEK[HEADER])")
    if status != "OK":
        return None
    for part in data:
        if isinstance(part, tuple):
            headers = email.message_from_bytes(part[1], policy=email.policy.default)
            values = [str(value) for value in headers.get_all("Authentication-Results") or []]
            return _internal_date(part[0]), values
    return None, []


def _internal_date(line: bytes) -> datetime | None:
    parsed = imaplib.Internaldate2tuple(line)
    if parsed is None:
        return None
    return datetime.fromtimestamp(mktime(parsed), tz=UTC)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _logout(client: imaplib.IMAP4) -> None:
    # The answer is known; a server that hangs up first changes nothing.
    with contextlib.suppress(imaplib.IMAP4.error, OSError):
        client.logout()


def _reason(mailbox: Mailbox, error: BaseException) -> str:
    text = str(error)
    if isinstance(error, (TimeoutError, socket.timeout)):
        text = _("timed out")
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror
    # Servers may quote back what they were sent: never show the password.
    return redact(text.strip() or type(error).__name__, [mailbox.password])
