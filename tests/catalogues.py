"""Reading mailops' gettext catalogues (.po) without a third-party parser."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import mailops

LOCALE = Path(mailops.__file__).resolve().parent / "locale"
# Placeholders and markup: what is left between them is the text a reader sees.
_NOT_TEXT = re.compile(r"%\(\w+\)[sdrgf]|%[sd]|\{\w*\}|<[^>]+>")


@dataclass
class Entry:
    msgid: str
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())

    def fragments(self) -> list[str]:
        """The English pieces of text between placeholders and tags, of two words or more."""
        pieces = []
        for text in filter(None, (self.msgid, self.msgid_plural)):
            for piece in _NOT_TEXT.split(text):
                piece = " ".join(piece.split()).strip(" .,:;()")
                if len(re.findall(r"[A-Za-z]{2,}", piece)) > 1:
                    pieces.append(piece)
        return pieces


def read_po(path: Path) -> list[Entry]:
    """The entries of ``path``, header excluded (a .po as msgmerge and msgfmt write it)."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int] | None = None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        obsolete = raw.startswith("#~")
        line = raw[2:].strip() if obsolete else raw.strip()
        if not line or (line.startswith("#") and not obsolete):
            if line.startswith("#,") and current is None:
                current = Entry(msgid="")
            if line.startswith("#,") and current is not None:
                current.flags |= {flag.strip() for flag in line[2:].split(",")}
            if not line and current is not None:
                if current.msgid:
                    entries.append(current)
                current, target = None, None
            continue
        keyword, _space, rest = line.partition(" ")
        if line.startswith('"'):
            keyword, rest = "", line
        value = ast.literal_eval(rest) if rest.startswith('"') else ""
        if current is None:
            current = Entry(msgid="")
        current.obsolete = current.obsolete or obsolete
        if keyword == "msgid":
            current.msgid, target = value, ("msgid", 0)
        elif keyword == "msgid_plural":
            current.msgid_plural, target = value, ("msgid_plural", 0)
        elif keyword == "msgctxt":
            current.msgctxt, target = value, ("msgctxt", 0)
        elif keyword.startswith("msgstr"):
            index = int(keyword[7:-1]) if "[" in keyword else 0
            current.msgstr[index], target = value, ("msgstr", index)
        elif keyword == "" and target is not None:
            name, index = target
            if name == "msgstr":
                current.msgstr[index] += value
            else:
                setattr(current, name, (getattr(current, name) or "") + value)
    return entries


def catalogue(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def english_left(text: str, language: str = "de") -> list[str]:
    """mailops' English texts found in ``text``: pieces of two words or more of any msgid.

    A piece that the translations also contain (a technical term kept as it is,
    "in MAILERS") is not a leftover. Whitespace is folded first.
    """
    text = " ".join(text.split())
    entries = read_po(catalogue(language))
    translated = " ".join(" ".join(value.split()) for e in entries for value in e.msgstr.values())
    pieces = {piece for entry in entries for piece in entry.fragments()}
    return sorted(piece for piece in pieces if piece in text and piece not in translated)
