"""Keep credentials out of everything mailops stores or shows.

SMTP and IMAP servers and provider APIs sometimes echo what they were sent
(an AUTH line, a request URL with a key, a JSON body with a token, an
``Authorization: Basic`` header), and they echo it in whatever form their
own output takes. Every error text passes through :func:`redact` before it
reaches a ``MailLog`` row, the command's output or a log record;
:class:`RedactSecretsFilter` does the same for log records written by other
code (Django's own loggers), and :class:`MailopsExceptionReporterFilter` with
:class:`MailopsExceptionReporter` for Django's debug page and error e-mails.

Which forms of a secret are masked, and where a short one is: see
:mod:`mailops.redaction.patterns`.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from mailops.conf import configured_settings
from mailops.mailers.registry import mailers_setting
from mailops.redaction.patterns import QUOTE, secret_pattern, whole_secret_pattern

REDACTED = "********"

# The same rule Django's SafeExceptionReporterFilter uses for setting names.
SECRET_NAME = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.IGNORECASE)

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
_NAMED_SECRET = re.compile(
    r"(?P<name>\b[\w-]*(?:api[_-]?key|token|secret|password|passwd|signature)[\w-]*"
    rf"{QUOTE}?\s*[:=]\s*{QUOTE}?)(?P<value>(?:(?!{QUOTE})[^\s&,;}}])+)",
    re.IGNORECASE,
)


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
    """Every secret of the mailers, ``ANYMAIL`` and ``MAILBOXES``, with credential blobs.

    The mailers' come from ``MAILERS``, or ``EMAIL_HOST_PASSWORD`` on classic settings.

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
    # Read unchecked: redaction runs inside logging and error pages, where a
    # mistyped MAILOPS value must not raise (the system checks report it).
    mailboxes = configured_settings().get("MAILBOXES", {})
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
    than :data:`~mailops.redaction.patterns.SHORT_SECRET_LENGTH` only in credential contexts.
    """
    if not text:
        return text
    secrets = configured_secrets() | {secret for secret in extra_secrets if secret}
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = secret_pattern(secret).sub(_keep_context, text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _AUTH_BLOB.sub(lambda m: f"{m['name']}{REDACTED}", text)
    return _NAMED_SECRET.sub(lambda m: f"{m['name']}{REDACTED}", text)


def is_secret(value: str) -> bool:
    """Whether ``value`` is, in any form, exactly one of the configured secrets (any length)."""
    if not value:
        return False
    return any(whole_secret_pattern(secret).fullmatch(value) for secret in configured_secrets())


def _keep_context(match: re.Match[str]) -> str:
    return (match.group("context") or "") + REDACTED


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
