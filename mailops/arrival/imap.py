"""Find one message by its Message-ID in an IMAP mailbox, read-only.

Every folder is opened with ``EXAMINE`` (read-only) and headers are read
with ``BODY.PEEK``, so nothing is marked seen, moved or deleted: the
mailbox is the user's own. Junk folders are found through the special-use
flag ``\\Junk`` (RFC 6154) where the server shows it, else by their usual
names in several languages. Folder names are decoded from modified UTF-7
(RFC 3501 §5.1.3), whether the server sends them as atoms, quoted strings
or literals.

The server is not trusted to be well-behaved: the connection
(:class:`~mailops.arrival.bounded.BoundedIMAP4`) has one deadline for the
whole conversation and size caps, so a hostile or broken server ends in a
:class:`MailboxError`, never a hang or a ``MemoryError``.

Why the standard library's :mod:`imaplib` and not IMAPClient or imap-tools:
both are built on :mod:`imaplib` and create its connection object
themselves, so the deadline and the caps (which must see every ``recv``)
could only be added through their private constructors. :mod:`imaplib`
documents ``read``, ``readline`` and ``send`` as the methods to override
for exactly this; what those libraries would add here (modified UTF-7 and
literal folder names in ``LIST``) is the short :mod:`mailops.arrival.folders`.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import email
import email.policy
import imaplib
import re
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import mktime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.arrival.bounded import (
    MAX_LITERAL,
    MAX_SESSION,
    BoundedIMAP4,
    MailboxError,
)
from mailops.arrival.folders import INBOX, Folder, encode_folder_name, inbox, parse_list
from mailops.arrival.mailboxes import Mailbox
from mailops.redaction import redact

# How imaplib writes server text into its exceptions: b'...' (often inside a list).
_BYTES_REPR = re.compile(r"""\[?b'(?:[^'\\]|\\.)*'\]?|\[?b"(?:[^"\\]|\\.)*"\]?""")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class FoundMessage:
    """Where the message was, what the server said about it."""

    folder: str
    junk: bool
    # When the receiving server stored it (IMAP INTERNALDATE), if it said.
    stored_at: datetime | None
    # Raw Authentication-Results header values, topmost (the receiver's) first.
    authentication_results: list[str]


def find_messages(
    mailbox: Mailbox, message_ids: Sequence[str], *, deadline: float | None = None
) -> dict[str, FoundMessage]:
    """Search ``mailbox``'s folders for each of ``message_ids``: ``{message_id: where}``.

    One connection and one login for all of them (a batch is read back in
    one session per look, not one per message). The session ends by
    ``deadline`` (a :func:`time.monotonic` instant) or after the mailbox's
    own ``timeout``, whichever comes first. Ids not found (yet) are left
    out. Raises :class:`MailboxError` when the server cannot be reached, is
    too slow, sends too much, refuses the login or lacks a configured folder.
    """
    ends = time.monotonic() + mailbox.timeout
    if deadline is not None:
        ends = min(ends, deadline)
    found: dict[str, FoundMessage] = {}
    with open_session(mailbox, ends=ends) as client:
        for folder in _folders(client, mailbox):
            _select(client, folder)
            for message_id in message_ids:
                if message_id in found:
                    continue
                hit = _search(client, message_id)
                if hit is not None:
                    stored_at, headers = hit
                    found[message_id] = FoundMessage(
                        folder=folder.name,
                        junk=folder.junk,
                        stored_at=stored_at,
                        authentication_results=headers,
                    )
            if len(found) == len(set(message_ids)):
                break
    return found


@contextlib.contextmanager
def open_session(
    mailbox: Mailbox,
    *,
    ends: float,
    max_literal: int = MAX_LITERAL,
    max_session: int = MAX_SESSION,
) -> Iterator[BoundedIMAP4]:
    """A logged-in connection to ``mailbox``, over by ``ends`` (a :func:`time.monotonic` instant).

    Logged out when the block ends. Whatever goes wrong inside (the server
    cannot be reached, is too slow, sends more than the caps allow, refuses
    the login, drops the connection) comes out as :class:`MailboxError`.
    """
    client = _connect(mailbox, ends, max_literal=max_literal, max_session=max_session)
    try:
        _login(client, mailbox)
        yield client
    except (imaplib.IMAP4.error, OSError) as error:
        raise MailboxError(_reason(mailbox, error), permanent=False) from None
    finally:
        _logout(client)


def folders_to_read(client: BoundedIMAP4, mailbox: Mailbox) -> list[Folder]:
    """The mailbox's configured folders, or the inbox and every junk folder (inbox first)."""
    return _folders(client, mailbox)


def list_folders(client: BoundedIMAP4) -> list[Folder]:
    """Every folder of the mailbox, names decoded."""
    return _list(client)


def internal_date(line: bytes) -> datetime | None:
    """The INTERNALDATE in a ``FETCH`` response line (when the server stored the message)."""
    return _internal_date(line)


def open_folder(client: BoundedIMAP4, folder: Folder, *, readonly: bool = True) -> int:
    """Open ``folder`` (``EXAMINE``; ``SELECT`` to change it); its UIDVALIDITY (0: none given)."""
    _select(client, folder, readonly=readonly)
    _status, data = client.response("UIDVALIDITY")
    try:
        return int(data[0]) if data and data[0] else 0
    except (TypeError, ValueError):
        return 0


def folder_wire_name(folder: Folder) -> str:
    """The quoted name commands such as ``COPY`` take for ``folder``."""
    return _quote(folder.wire if folder.wire.isascii() else encode_folder_name(folder.name))


def _connect(
    mailbox: Mailbox, ends: float, *, max_literal: int = MAX_LITERAL, max_session: int = MAX_SESSION
) -> BoundedIMAP4:
    where = f"{mailbox.host}:{mailbox.port}"
    context = ssl.create_default_context() if mailbox.ssl else None
    try:
        return BoundedIMAP4(
            mailbox.host,
            mailbox.port,
            ends=ends,
            ssl_context=context,
            max_literal=max_literal,
            max_session=max_session,
        )
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


def _login(client: BoundedIMAP4, mailbox: Mailbox) -> None:
    try:
        if mailbox.username.isascii() and mailbox.password.isascii():
            client.login(_quote(mailbox.username), mailbox.password)
        elif "AUTH=PLAIN" in client.capabilities:
            # LOGIN's strings are ASCII; SASL PLAIN carries UTF-8 (RFC 4616).
            client.authenticate("PLAIN", lambda _challenge: _plain(mailbox))
        else:
            raise MailboxError(
                _(
                    "IMAP server %(server)s does not offer AUTHENTICATE PLAIN, which a "
                    "user name or password with non-ASCII characters needs"
                )
                % {"server": client.where}
            )
    except imaplib.IMAP4.error as error:
        raise MailboxError(
            _("IMAP login as %(username)s refused: %(reason)s")
            % {"username": mailbox.username, "reason": _reason(mailbox, error)}
        ) from None


def _plain(mailbox: Mailbox) -> bytes:
    return f"\0{mailbox.username}\0{mailbox.password}".encode()


def _folders(client: BoundedIMAP4, mailbox: Mailbox) -> list[Folder]:
    """The folders to search, in order: the inbox first."""
    listed = {folder.name: folder for folder in _list(client)}
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
        return [listed.get(name) or inbox() for name in mailbox.folders]
    junk = sorted(
        (folder for folder in listed.values() if folder.junk and folder.name != INBOX),
        key=lambda folder: folder.name,
    )
    return [inbox(), *junk]


def _list(client: BoundedIMAP4) -> list[Folder]:
    """Every folder with its lower-cased flags, names decoded."""
    status = "NO"
    lines: list[Any] = []
    if _offers_after_login(client, "SPECIAL-USE"):
        # RFC 6154: a plain LIST MAY leave the special-use flags out; ask for them.
        with contextlib.suppress(imaplib.IMAP4.error):
            status, lines = client.list('""', '"*" RETURN (SPECIAL-USE)')
    if status != "OK":
        status, lines = client.list()
    if status != "OK":
        raise MailboxError(_("the IMAP server refused to list its folders"), permanent=False)
    return list(parse_list(lines))


def offers(client: BoundedIMAP4, capability: str) -> bool:
    """Whether the logged-in server offers ``capability`` (e.g. ``MOVE``)."""
    return _offers_after_login(client, capability)


def _offers_after_login(client: BoundedIMAP4, capability: str) -> bool:
    # Servers announce more once logged in (Dovecot: SPECIAL-USE); imaplib keeps
    # only the list from before.
    status, data = client.capability()
    words = data[0].split() if status == "OK" and data and isinstance(data[0], bytes) else []
    return capability.encode() in {word.upper() for word in words}


def _select(client: BoundedIMAP4, folder: Folder, *, readonly: bool = True) -> None:
    status, _data = client.select(folder_wire_name(folder), readonly=readonly)
    if status != "OK":
        raise MailboxError(
            _("cannot open folder %(folder)s on the IMAP server") % {"folder": folder.name}
        )


def _search(client: BoundedIMAP4, message_id: str) -> tuple[datetime | None, list[str]] | None:
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


def _logout(client: BoundedIMAP4) -> None:
    # The answer is known; a server that hangs up first changes nothing. After
    # a cap or the deadline, nothing more is sent: the connection is just closed.
    if not client.broken:
        with contextlib.suppress(imaplib.IMAP4.error, OSError, MailboxError):
            client.logout()
            return
    with contextlib.suppress(OSError):
        client.shutdown()


def imap_secrets(mailbox: Mailbox) -> list[str]:
    """The password in every form this module sends it: as is, quoted-escaped, in SASL PLAIN."""
    escaped = _quote(mailbox.password)[1:-1]
    plain = base64.b64encode(_plain(mailbox)).decode()
    return [mailbox.password, escaped, plain]


def in_words(error: BaseException) -> str:
    """An imaplib or socket error as one line of text: no ``b'…\\r'``, no control characters."""
    if isinstance(error, (TimeoutError, socket.timeout)):
        return _("timed out")
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(
        arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg) for arg in error.args
    )
    text = _BYTES_REPR.sub(_unrepr, text)
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text or type(error).__name__


def _unrepr(match: re.Match[str]) -> str:
    literal = match[0].removeprefix("[").removesuffix("]")
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return match[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reason(mailbox: Mailbox, error: BaseException) -> str:
    # Servers may quote back what they were sent (escaped, as LOGIN sent it):
    # the text is unescaped from Python's bytes form first, then every form
    # of the password is masked.
    return redact(in_words(error), imap_secrets(mailbox))
