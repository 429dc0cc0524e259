"""Keep credentials out of everything mailops stores or shows.

SMTP and IMAP servers and provider APIs sometimes echo what they were sent
(an AUTH line, a request URL with a key, a JSON body with a token, an
``Authorization: Basic`` header), and they echo it in whatever form their
own output takes. Every error text passes through :func:`redact` before it
reaches a ``MailLog`` row, the command's output or a log record;
:class:`RedactSecretsFilter` does the same for log records written by other
code (Django's own loggers), and :class:`MailopsExceptionReporterFilter` with
:class:`MailopsExceptionReporter` for Django's debug page and error e-mails.

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
``api:key`` (HTTP Basic). A long enough secret (six characters or more) is
also found inside the base64 of any longer text that contains it.

Short secrets
-------------
A secret of fewer than four characters (the README's example password is
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
import copy
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from mailops.conf import get_setting
from mailops.mailers.info import mailers_setting

REDACTED = "********"

# The same rule Django's SafeExceptionReporterFilter uses for setting names.
SECRET_NAME = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.IGNORECASE)

# Secrets shorter than this are masked only in credential contexts (see above).
SHORT_SECRET_LENGTH = 4
# Base64 of a secret inside longer text is matched from this many characters on.
_MIN_B64_CORE = 8

# URL credentials and well-known "name=value" shapes, whatever the value.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]*@", re.I)
# What goes after "Authorization: Basic", "AUTH PLAIN", "AUTH LOGIN" ...: a
# credential blob whatever it decodes to.
_AUTH_BLOB = re.compile(
    r"(?P<name>\b(?i:Basic|Bearer|AUTH\s+(?:PLAIN|LOGIN|CRAM-MD5|XOAUTH2))\s+)"
    # Base64 or a token: a digit, "+", "/" or "=" in it, or both cases
    # ("Basic authentication failed" is prose, not a blob).
    r"(?P<value>(?=[\w.~+/=-]*[0-9+/=])[\w.~+/=-]{6,}"
    r"|(?=[\w.~-]*[a-z])(?=[\w.~-]*[A-Z])[\w.~-]{12,})",
)
# An opening quote in any of the escapes a server or serializer uses.
_QUOTE = r"(?:\\{0,3}[\"']|&quot;|&apos;|&#0*3[49];|&#[xX]0*2[27];)"
_NAMED_SECRET = re.compile(
    r"(?P<name>\b[\w-]*(?:api[_-]?key|token|secret|password|passwd|signature)[\w-]*"
    rf"{_QUOTE}?\s*[:=]\s*{_QUOTE}?)(?P<value>(?:(?!{_QUOTE})[^\s&,;}}])+)",
    re.IGNORECASE,
)
# Where a short secret is masked: after a credential word, or after a quote.
_CREDENTIAL_WORD = (
    r"\b(?i:password|passwd|pass|pwd|secret|token|key|credentials?)\b"
    rf"{_QUOTE}?\s*(?:[:=]|\b(?i:is)\b)?\s*{_QUOTE}?"
)
_SHORT_CONTEXT = rf"(?:{_CREDENTIAL_WORD}|(?<![\w\\]){_QUOTE})"
_BASE64_CHARS = r"A-Za-z0-9+/_\-"
_HTML_NAMES = {'"': "quot", "&": "amp", "<": "lt", ">": "gt", "'": "apos"}


def secret_values(options: Mapping[str, Any]) -> set[str]:
    """The values in a MAILERS ``OPTIONS`` dict that must never be shown."""
    found: set[str] = set()
    for name, value in options.items():
        if isinstance(value, Mapping):
            found |= secret_values(value)
        elif isinstance(value, str) and value and SECRET_NAME.search(name):
            found.add(value)
    return found


def credential_blobs(username: str, password: str) -> set[str]:
    """What AUTH PLAIN, AUTH LOGIN and HTTP Basic put on the wire for this pair."""
    return {f"\0{username}\0{password}", f"{username}\0{password}", f"{username}:{password}"}


def configured_secrets() -> set[str]:
    """Every secret in ``MAILERS``, ``ANYMAIL`` and ``MAILBOXES``, with credential blobs.

    Each is matched in every form :func:`redact` knows (the module's docstring).
    """
    raw: set[str] = set()
    for config in mailers_setting().values():
        if not isinstance(config, Mapping):
            continue
        options = config.get("OPTIONS", {})
        if not isinstance(options, Mapping):
            continue
        raw |= _with_basic_auth(secret_values(options))
        username, password = options.get("username"), options.get("password")
        if isinstance(username, str) and isinstance(password, str) and username and password:
            raw |= credential_blobs(username, password)
    raw |= _with_basic_auth(secret_values(getattr(settings, "ANYMAIL", {}) or {}))
    # IMAP passwords of proof-of-arrival mailboxes (and what LOGIN/AUTH=PLAIN send).
    mailboxes = get_setting("MAILBOXES")
    for entry in mailboxes.values() if isinstance(mailboxes, Mapping) else ():
        if not isinstance(entry, Mapping):
            continue
        password, username = entry.get("password"), entry.get("username")
        if isinstance(password, str) and password:
            raw.add(password)
            if isinstance(username, str) and username:
                raw |= credential_blobs(username, password)
    return {secret for secret in raw if secret}


def _with_basic_auth(secrets: set[str]) -> set[str]:
    # HTTP Basic auth as providers use it: "api:<key>", "<key>:".
    return secrets | {blob for secret in secrets for blob in (f"api:{secret}", f"{secret}:")}


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """``text`` with configured secrets, ``extra_secrets`` and credential-shaped values masked.

    Every form listed in the module's docstring is masked; secrets shorter
    than :data:`SHORT_SECRET_LENGTH` only in credential contexts.
    """
    if not text:
        return text
    secrets = configured_secrets() | {secret for secret in extra_secrets if secret}
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = _secret_pattern(secret).sub(_keep_context, text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _AUTH_BLOB.sub(lambda m: f"{m['name']}{REDACTED}", text)
    return _NAMED_SECRET.sub(lambda m: f"{m['name']}{REDACTED}", text)


def is_secret(value: str) -> bool:
    """Whether ``value`` is, in any form, exactly one of the configured secrets (any length)."""
    if not value:
        return False
    return any(_whole_pattern(secret).fullmatch(value) for secret in configured_secrets())


def _keep_context(match: re.Match[str]) -> str:
    return (match.group("context") or "") + REDACTED


@functools.lru_cache(maxsize=256)
def _secret_pattern(secret: str) -> re.Pattern[str]:
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
def _whole_pattern(secret: str) -> re.Pattern[str]:
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


def has_url_password(value: str) -> bool:
    """Whether ``value`` is (or holds) a URL with a password: ``scheme://user:pass@host``."""
    for word in value.split():
        if "://" not in word:
            continue
        try:
            if urlsplit(word).password:
                return True
        except ValueError:
            # Not parseable (a bad port, brackets): it may still hold one.
            return "@" in word
    return False


class RedactSecretsFilter(logging.Filter):
    """A logging filter that masks secrets in a record's message and traceback.

    Put it on a handler (``LOGGING["filters"]`` with ``"()":
    "mailops.redaction.RedactSecretsFilter"``, then ``"filters": [...]`` on
    each handler): every record the handler writes, from mailops or from
    Django's own loggers (``django.contrib.auth`` logs the raw
    ``SMTPAuthenticationError`` of a failed password-reset mail, with what
    the server echoed), passes through :func:`redact`. The handler gets a
    redacted copy; other handlers see the record as it was logged.
    """

    def filter(self, record: logging.LogRecord) -> logging.LogRecord:
        redacted = copy.copy(record)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A broken format string: the formatter will say so; mask what it has.
            message = f"{record.msg} {record.args}"
        redacted.msg, redacted.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            redacted.exc_text = redact(text)
            # The formatter would format the exception again, from the original.
            redacted.exc_info = None
        elif record.exc_text:
            redacted.exc_text = redact(record.exc_text)
        if record.stack_info:
            redacted.stack_info = redact(record.stack_info)
        return redacted


class _Masked:
    """A debug-page value shown by its redacted ``repr``."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__


class MailopsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus values that hold credentials whatever their name or type.

    Django masks settings and request META by *name* (API, TOKEN, KEY,
    SECRET, PASS, SIGNATURE), and frame variables only when a function is
    decorated with ``sensitive_variables``. ``runserver`` copies the
    environment into every request's META, so ``MAILER_URL`` would show with
    its password; smtplib's ``login()`` keeps the password and the server's
    reply (``last_exception``, an exception object) in its frame. Here a
    string that parses as a URL with a password is masked whole, a value
    equal to a configured secret (of any length) is masked whole, and any
    other value whose ``repr`` holds a secret is shown by its redacted
    ``repr``. Set it as ``DEFAULT_EXCEPTION_REPORTER_FILTER``, together with
    :class:`MailopsExceptionReporter` as ``DEFAULT_EXCEPTION_REPORTER`` (which
    masks the exception messages).
    """

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        return self._cleanse_value(super().cleanse_setting(key, value))

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {name: self._cleanse_value(value) for name, value in meta.items()}

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        variables = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, self._cleanse_value(value)) for name, value in variables]

    def _cleanse_value(self, value: Any) -> Any:
        if isinstance(value, str):
            if has_url_password(value) or is_secret(value):
                return self.cleansed_substitute
            return redact(value)
        if isinstance(value, bytes | bytearray):
            text = value.decode("utf-8", "replace")
            if is_secret(text):
                return self.cleansed_substitute
        try:
            shown = repr(value)
        except Exception:  # noqa: BLE001 - Django shows its own "Error in formatting"
            return value
        cleaned = redact(shown)
        return value if cleaned == shown else _Masked(cleaned)


class MailopsExceptionReporter(ExceptionReporter):
    """Django's debug page and error e-mail, with exception messages redacted.

    The page shows ``str(exception)`` at the top, in the copy-and-paste
    traceback and for every chained exception ("During handling of the above
    exception (...)"); an ``SMTPAuthenticationError`` there holds whatever
    the server echoed. Set it as ``DEFAULT_EXCEPTION_REPORTER``.
    """

    def get_traceback_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().get_traceback_data()
        if "exception_value" in data:
            data["exception_value"] = redact(str(data["exception_value"]))
        if "exception_notes" in data:
            data["exception_notes"] = redact(str(data["exception_notes"]))
        if data.get("unicode_hint"):
            data["unicode_hint"] = redact(str(data["unicode_hint"]))
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                # A string (not a wrapper) so the template's {% ifchanged %} sees
                # the same cause on consecutive frames as unchanged.
                frame["exc_cause"] = redact(str(frame["exc_cause"]))
        return data
