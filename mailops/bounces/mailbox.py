"""The new messages of a mailbox's folders, read over the proof-of-arrival IMAP connection.

Read-only unless asked to move: folders are opened with ``EXAMINE`` and
messages read with ``BODY.PEEK``, so no flag changes (not even ``\\Seen``).
Each folder is read from just above the last UID handled, as long as its
UIDVALIDITY is the one remembered; a folder seen for the first time (or
whose UIDVALIDITY changed) is read from :data:`FIRST_LOOK_BACK` ago.

Only the headers of every new message are fetched; a message is read in
full only if its headers look like a report (:func:`looks_like_report`)
and it is no larger than the size cap, so ordinary mail is never read past
its headers and one huge message cannot exhaust memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from email.message import Message

from django.utils import timezone
from django.utils.translation import gettext

from mailops.arrival.folders import Folder
from mailops.arrival.imap import (
    BoundedIMAP4,
    MailboxError,
    folder_wire_name,
    internal_date,
    list_folders,
    offers,
    open_folder,
)
from mailops.bounces.reports import looks_like_report, parse_message

# A folder read for the first time is read from this long ago (--since goes further).
FIRST_LOOK_BACK = timedelta(days=7)
# Headers fetched per FETCH command.
HEADER_BATCH = 100

_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Position:
    """How far a folder was read: its UIDVALIDITY and the last UID handled."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class NewMessage:
    """One new message of a folder.

    ``raw`` holds the whole message when it looked like a report and was
    small enough; ``too_large`` says a report-like message was left unread.
    """

    folder: str
    uidvalidity: int
    uid: int
    size: int
    received_at: datetime | None
    headers: Message
    raw: bytes | None = None
    too_large: bool = False


def new_messages(
    client: BoundedIMAP4,
    folders: list[Folder],
    *,
    positions: Mapping[str, Position],
    since: date | None,
    max_size: int,
    readonly: bool = True,
) -> Iterator[NewMessage]:
    """Every new message of ``folders``, in UID order, folder by folder.

    ``positions`` maps folder names to where the last run stopped;
    ``since`` (a date) reads every message the server dated from that day
    instead. With ``readonly=False`` the folders are opened with ``SELECT``
    (for moving reports); messages are still read with ``BODY.PEEK``.
    """
    for folder in folders:
        uidvalidity = open_folder(client, folder, readonly=readonly)
        position = positions.get(folder.name)
        if position is not None and position.uidvalidity != uidvalidity:
            position = None
        for uid_batch in _batches(_search(client, position, since), HEADER_BATCH):
            for uid, size, received_at, headers in _headers(client, uid_batch):
                message = NewMessage(
                    folder=folder.name,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    size=size,
                    received_at=received_at,
                    headers=headers,
                )
                if not looks_like_report(headers):
                    yield message
                elif size > max_size:
                    yield replace(message, too_large=True)
                else:
                    yield replace(message, raw=_body(client, uid))


def move_message(client: BoundedIMAP4, uid: int, target: Folder) -> None:
    """Move one message of the selected folder to ``target`` (``UID MOVE``, RFC 6851).

    Without MOVE, ``COPY`` then ``\\Deleted`` and ``UID EXPUNGE`` of that one
    UID (UIDPLUS, RFC 4315): a plain ``EXPUNGE`` would also remove any other
    message the user had marked deleted, so without either it refuses.
    """
    wire = folder_wire_name(target)
    if offers(client, "MOVE"):
        status, _data = client.uid("MOVE", str(uid), wire)
    elif offers(client, "UIDPLUS"):
        status, _data = client.uid("COPY", str(uid), wire)
        if status == "OK":
            status, _data = client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
        if status == "OK":
            status, _data = client.uid("EXPUNGE", str(uid))
    else:
        raise MailboxError(
            gettext(
                "the IMAP server offers neither MOVE nor UIDPLUS, so --move-to cannot move "
                "one message without touching others"
            )
        )
    if status != "OK":
        raise MailboxError(
            gettext("the IMAP server refused to move message %(uid)s to %(folder)s")
            % {"uid": uid, "folder": target.name}
        )


def find_folder(client: BoundedIMAP4, name: str) -> Folder:
    """The folder ``name`` (as people read it), or :class:`MailboxError` listing those there are."""
    listed = {folder.name: folder for folder in list_folders(client)}
    if name in listed:
        return listed[name]
    raise MailboxError(
        gettext("folder %(name)s not on the IMAP server; it has: %(folders)s")
        % {"name": name, "folders": ", ".join(sorted(listed)) or gettext("(none)")}
    )


def _search(client: BoundedIMAP4, position: Position | None, since: date | None) -> list[int]:
    if since is not None or position is None:
        first_day = since or (timezone.localdate() - FIRST_LOOK_BACK)
        status, data = client.uid("SEARCH", "SINCE", _imap_date(first_day))
    else:
        status, data = client.uid("SEARCH", "UID", f"{position.last_uid + 1}:*")
    if status != "OK":
        raise MailboxError("the IMAP server refused to search the folder")
    uids = sorted({int(uid) for uid in (data[0] or b"").split() if uid.isdigit()})
    if position is not None and since is None:
        # "n:*" always includes the highest UID, even one below n (RFC 3501 §6.4.8).
        uids = [uid for uid in uids if uid > position.last_uid]
    return uids


def _headers(
    client: BoundedIMAP4, uids: list[int]
) -> Iterator[tuple[int, int, datetime | None, Message]]:
    wanted = ",".join(str(uid) for uid in uids)
    status, data = client.uid("FETCH", wanted, "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER])")
    if status != "OK":
        raise MailboxError("the IMAP server refused to send the messages' headers")
    found: dict[int, tuple[int, int, datetime | None, Message]] = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        meta, literal = part[0], part[1]
        uid_match, size = _FETCH_UID.search(meta), _FETCH_SIZE.search(meta)
        if uid_match is None:
            continue
        found[int(uid_match[1])] = (
            int(uid_match[1]),
            int(size[1]) if size else len(literal),
            internal_date(meta),
            parse_message(literal),
        )
    for uid in uids:
        # A message expunged meanwhile simply is not there.
        if uid in found:
            yield found[uid]


def _body(client: BoundedIMAP4, uid: int) -> bytes:
    status, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if status != "OK":
        raise MailboxError(f"the IMAP server refused to send message {uid}")
    for part in data:
        if isinstance(part, tuple):
            return bytes(part[1])
    return b""


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _imap_date(day: date) -> str:
    # RFC 3501's date: 7-Dec-2026, month names in English whatever the locale.
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"
