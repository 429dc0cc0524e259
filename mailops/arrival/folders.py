"""IMAP folder names as servers send them and as people read them.

``LIST`` replies give each folder's flags (``\\Junk``, RFC 6154), its
hierarchy separator and its name, as an atom, a quoted string or a literal,
in modified UTF-7 (RFC 3501 §5.1.3: ``Courrier ind&AOk-sirable``). This
module turns them into :class:`Folder` objects with readable names and
says which are junk folders; :func:`encode_folder_name` is the way back.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

INBOX = "INBOX"
# Junk folders by their last name component (case-insensitive), searched
# when present whether or not the server flags them \Junk: the names mail
# clients and hosted mailboxes give them in common languages.
JUNK_NAMES = frozenset(
    name.casefold()
    for name in (
        "Junk",
        "Spam",
        "Junk E-mail",
        "Junk Email",
        "Junk Mail",
        "Bulk Mail",
        "Junk-E-Mail",  # de (Outlook)
        "Spamverdacht",  # de (GMX, web.de)
        "Courrier indésirable",  # fr
        "Pourriel",  # fr-CA
        "Correo no deseado",  # es
        "Posta indesiderata",  # it
        "Ongewenste e-mail",  # nl
        "Lixo Eletrônico",  # pt-BR
        "Lixo Electrónico",  # pt-PT
        "Skräppost",  # sv
        "Uønsket e-post",  # nb
        "Uønsket post",  # da
        "Roskaposti",  # fi
        "Wiadomości-śmieci",  # pl
        "Nevyžádaná pošta",  # cs
        "Нежелательная почта",  # ru
        "Спам",  # ru, uk
        "迷惑メール",  # ja
        "垃圾邮件",  # zh
    )
)

_LIST_HEAD = re.compile(
    rb'^\((?P<flags>[^)]*)\) (?P<sep>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$', re.IGNORECASE
)
_LITERAL_ANNOUNCEMENT = re.compile(rb"^\{\d+\+?\}$")


@dataclass(frozen=True)
class Folder:
    """One folder of ``LIST``: its readable name, its name on the wire, its flags."""

    name: str
    wire: str
    flags: frozenset[str]
    separator: str

    @property
    def junk(self) -> bool:
        leaf = self.name.rsplit(self.separator, 1)[-1] if self.separator else self.name
        return "\\junk" in self.flags or leaf.casefold() in JUNK_NAMES


def inbox() -> Folder:
    """The inbox, which every server has, whether listed or not."""
    return Folder(name=INBOX, wire=INBOX, flags=frozenset(), separator="")


def parse_list(lines: Iterable[Any]) -> Iterable[Folder]:
    """The folders of imaplib's ``LIST`` data: names as atoms, quoted strings or literals.

    A literal comes as ``(b'(flags) "/" {n}', name)`` followed by the rest
    of its line (usually ``b''``), which is skipped.
    """
    after_literal = False
    for line in lines:
        if isinstance(line, tuple):
            head, raw = line[0], line[1]
            match = _LIST_HEAD.match(head)
            after_literal = True
            if match is None or not _LITERAL_ANNOUNCEMENT.match(match["name"]):
                continue
            name = raw
        elif isinstance(line, bytes):
            if after_literal:
                after_literal = False
                continue
            match = _LIST_HEAD.match(line)
            if match is None:
                continue
            name = _astring(match["name"])
        else:
            continue
        wire = name.decode("utf-8", "replace")
        separator = "" if match["sep"].upper() == b"NIL" else _astring(match["sep"]).decode()
        yield Folder(
            name=decode_folder_name(wire),
            wire=wire,
            flags=frozenset(flag.lower() for flag in match["flags"].decode().split()),
            separator=separator,
        )


def _astring(token: bytes) -> bytes:
    if token.startswith(b'"') and token.endswith(b'"') and len(token) >= 2:
        return re.sub(rb"\\(.)", rb"\1", token[1:-1])
    return token


def decode_folder_name(wire: str) -> str:
    """A folder name as people read it, from modified UTF-7 (RFC 3501 §5.1.3).

    A name that is not valid modified UTF-7 (a server sending UTF-8, say)
    is returned as it came.
    """
    if "&" not in wire:
        return wire
    pieces = re.split(r"&([^-]*)-", wire)
    decoded: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            if "&" in piece:
                return wire
            decoded.append(piece)
        elif not piece:
            decoded.append("&")
        else:
            padded = piece.replace(",", "/") + "=" * (-len(piece) % 4)
            try:
                decoded.append(base64.b64decode(padded, validate=True).decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError):
                return wire
    return "".join(decoded)


def encode_folder_name(name: str) -> str:
    """``name`` in modified UTF-7, the form ``SELECT`` takes (RFC 3501 §5.1.3)."""
    encoded: list[str] = []
    pending: list[str] = []

    def shift_out() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            encoded.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            shift_out()
            encoded.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    shift_out()
    return "".join(encoded)
