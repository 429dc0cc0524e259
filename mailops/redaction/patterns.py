"""The patterns that find a secret in any form a server may have echoed it in.

Which forms of a secret are masked
----------------------------------
A secret is matched character by character, each character in any of the
forms a server or a serializer may have turned it into, mixed freely:

* as itself, or escaped with backslashes (``\\"``, ``\\\\``, ``\\'``; one or
  two levels, as in the ``repr`` of a ``bytes`` reply inside an exception);
* percent-encoded, upper or lower case (``%2F``, ``%2f``), ``+`` or ``%20``
  for a space;
* JSON or Python escapes (``\\u00e9``, ``\\xe9``, the UTF-8 bytes
  ``\\xc3\\xa9`` of a ``bytes`` repr, ``\\n``);
* HTML character references (``&quot;``, ``&#34;``, ``&#x22;``, ``&amp;``);

and, as a whole, in base64 and base64url (with or without padding) and in
hex (either case), alone and in the credential blobs that go over the wire:
``\\0user\\0password`` (SMTP/IMAP ``AUTH PLAIN``), ``user:password`` and
``api:key`` (HTTP Basic). A secret of about eight bytes or more is also found
inside the base64 of any longer text that contains it.

Short secrets
-------------
A secret of fewer than four characters (the docs' example password is
``pw``) would, if masked wherever it occurs, turn ordinary text to mush
("on port 25" with the password ``on``). It is masked where it stands as a
whole value in a credential context:

* after a credential word (``password``, ``passwd``, ``pass``, ``pwd``,
  ``secret``, ``token``, ``key``, ``credentials``) and an optional ``:``,
  ``=`` or ``is``, quoted or not: ``password 'pw'``, ``"password": "pw"``;
* quoted whole, in any quoting above: ``'pw'``, ``\\"pw\\"``, ``&quot;pw&quot;``;
* as the password of a URL (``scheme://user:pw@host``, whatever its length);
* inside the credential blobs above, in any of their forms (``user:pw`` and
  ``\\0user\\0pw`` are long enough to be masked everywhere);
* as a whole value that *is* the secret (a variable on the debug page).

"Whole" means not followed by a letter or digit: ``password 'pw'`` is masked,
``password pwned`` is not.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re

# Secrets shorter than this are masked only in credential contexts (see above).
SHORT_SECRET_LENGTH = 4
# Base64 of a secret inside longer text is matched from this many characters on.
_MIN_B64_CORE = 8

# An opening quote in any of the escapes a server or serializer uses.
QUOTE = r"(?:\\{0,3}[\"']|&quot;|&apos;|&#0*3[49];|&#[xX]0*2[27];)"
# Where a short secret is masked: after a credential word, or after a quote.
_CREDENTIAL_WORD = (
    r"\b(?i:password|passwd|pass|pwd|secret|token|key|credentials?)\b"
    rf"{QUOTE}?\s*(?:[:=]|\b(?i:is)\b)?\s*{QUOTE}?"
)
_SHORT_CONTEXT = rf"(?:{_CREDENTIAL_WORD}|(?<![\w\\]){QUOTE})"
_BASE64_CHARS = r"A-Za-z0-9+/_\-"
_HTML_NAMES = {'"': "quot", "&": "amp", "<": "lt", ">": "gt", "'": "apos"}


@functools.lru_cache(maxsize=256)
def secret_pattern(secret: str) -> re.Pattern[str]:
    """One pattern for every form of ``secret`` (a named ``context`` group is kept)."""
    forms = _text_form(secret)
    encoded = "|".join(_encoded_forms(secret))
    # Not followed by what would make it part of a longer word.
    end = r"(?![A-Za-z0-9])"
    if len(secret) < SHORT_SECRET_LENGTH:
        # Only as a whole value in a credential context; the encoded forms of
        # so short a value (base64 "cHc", hex "7077") are ordinary-looking text.
        return re.compile(rf"(?P<context>{_SHORT_CONTEXT})(?:{forms}){end}")
    if not secret[-1].isalnum():
        end = ""
    return re.compile(rf"(?P<context>)(?:{forms}|{encoded}){end}")


@functools.lru_cache(maxsize=256)
def whole_secret_pattern(secret: str) -> re.Pattern[str]:
    """A pattern for ``secret`` in any form, to ``fullmatch`` a value (whatever its length)."""
    encoded = "|".join(_encoded_forms(secret))
    return re.compile(rf"(?:{_text_form(secret)}|{encoded})")


def _text_form(secret: str) -> str:
    """A pattern matching ``secret`` with each character in any textual escape."""
    # Spaces dropped too: Google shows app passwords in groups of four that
    # people paste with or without them.
    return "".join(
        _char_forms(char) + ("?" if char.isspace() and len(secret) >= 8 else "") for char in secret
    )


@functools.lru_cache(maxsize=1024)
def _char_forms(char: str) -> str:
    code = ord(char)
    utf8 = char.encode("utf-8", "surrogatepass")
    plain = re.escape(char)
    forms: list[str] = []
    if char in "\"'":
        forms.append(r"\\{1,3}" + re.escape(char))
    elif char == "\\":
        forms.append(r"\\{2,4}")
    python_escapes = {"\n": "n", "\r": "r", "\t": "t", "\0": "0"}
    if char in python_escapes:
        forms.append(r"\\{1,2}" + python_escapes[char])
    if char == "\0":
        forms.append(r"\\{1,2}x00|\\{1,2}u0000")
    # Percent-encoding of the UTF-8 bytes, either case; "+" for a space.
    forms.append("".join(f"%{byte:02X}" for byte in utf8))
    if char == " ":
        forms.append(r"\+")
    # JSON / Python escapes: \u00e9, \xe9, a bytes repr's \xc3\xa9, \U0001f600.
    if code <= 0xFFFF:
        forms.append(rf"\\{{1,2}}u{code:04X}")
    else:
        high, low = _surrogates(code)
        forms.append(rf"\\{{1,2}}U{code:08X}|\\{{1,2}}u{high:04X}\\{{1,2}}u{low:04X}")
    if code <= 0xFF:
        forms.append(rf"\\{{1,2}}x{code:02X}")
    if code >= 0x80:
        forms.append("".join(rf"\\{{1,2}}x{byte:02X}" for byte in utf8))
    # HTML: &#233; &#xe9; &quot; (and &amp; before them, escaped twice).
    forms.append(rf"&(?:amp;)?#0*{code};|&(?:amp;)?#[xX]0*{code:X};")
    if char in _HTML_NAMES:
        forms.append(rf"&(?:amp;)?{_HTML_NAMES[char]};")
    # The character itself keeps its case; hex digits (and the "x", "u" of
    # the escapes) in the other forms match either case.
    return f"(?:{plain}|(?i:{'|'.join(forms)}))"


def _surrogates(code: int) -> tuple[int, int]:
    code -= 0x10000
    return 0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)


def _encoded_forms(secret: str) -> list[str]:
    """Patterns for the base64, base64url and hex forms of ``secret``."""
    data = secret.encode("utf-8", "surrogatepass")
    forms: set[str] = set()
    standard = base64.b64encode(data).decode().rstrip("=")
    forms.add(re.escape(standard) + "={0,2}")
    forms.add(re.escape(standard.replace("+", "-").replace("/", "_")) + "={0,2}")
    for core in _base64_cores(data):
        # Inside the base64 of a longer text: mask the whole encoded token.
        for alphabet_core in {core, core.replace("+", "-").replace("/", "_")}:
            forms.add(rf"[{_BASE64_CHARS}]*{re.escape(alphabet_core)}[{_BASE64_CHARS}]*={{0,2}}")
    forms.add("(?i:" + binascii.hexlify(data).decode() + ")")
    # Longest first: alternation takes the first that matches.
    return sorted(forms, key=len, reverse=True)


def _base64_cores(data: bytes) -> list[str]:
    """The base64 characters ``data`` fixes wherever it starts in a longer text."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode().rstrip("=")
        first = -(-offset * 8 // 6)  # the first character free of the prefix
        last = (offset + len(data)) * 8 // 6  # characters fully inside the data
        core = encoded[first:last]
        if len(core) >= _MIN_B64_CORE:
            cores.append(core)
    return cores
