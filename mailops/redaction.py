"""Keep credentials out of everything mailops stores or shows.

SMTP servers and provider APIs sometimes echo what they were sent (an AUTH
line, a request URL with a key, a JSON body with a token, an
``Authorization: Basic`` header). Every error text passes through
:func:`redact` before it reaches a ``MailLog`` row, the command's output or
a log record. :class:`MailopsExceptionReporterFilter` does the same for
Django's debug page and error e-mails.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

from mailops.conf import get_setting
from mailops.mailers.registry import mailers_setting

REDACTED = "********"

# The same rule Django's SafeExceptionReporterFilter uses for setting names.
SECRET_NAME = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.IGNORECASE)

# Shorter values are too likely to match ordinary text ("on", "25", ...).
_MIN_SECRET_LENGTH = 4

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
    r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"'&,;}]+)",
    re.IGNORECASE,
)


def secret_values(options: Mapping[str, Any]) -> set[str]:
    """The values in a MAILERS ``OPTIONS`` dict that must never be shown."""
    found: set[str] = set()
    for name, value in options.items():
        if isinstance(value, Mapping):
            found |= secret_values(value)
        elif isinstance(value, str) and SECRET_NAME.search(name):
            found.add(value)
    return found


def configured_secrets() -> set[str]:
    """Every secret of the mailers (``MAILERS``, or ``EMAIL_HOST_PASSWORD``) and ``ANYMAIL``.

    With the encoded forms AUTH puts on the wire.
    """
    raw: set[str] = set()
    for config in mailers_setting().values():
        if not isinstance(config, Mapping):
            continue
        raw |= secret_values(config.get("OPTIONS", {}))
        username = config.get("OPTIONS", {}).get("username")
        password = config.get("OPTIONS", {}).get("password")
        if username and password:
            # What AUTH PLAIN / AUTH LOGIN put on the wire, should a server echo it.
            raw.add(_b64(f"\0{username}\0{password}"))
            raw.add(_b64(f"{username}:{password}"))
    raw |= secret_values(getattr(settings, "ANYMAIL", {}) or {})
    # IMAP passwords of proof-of-arrival mailboxes (and what LOGIN/AUTH=PLAIN send).
    mailboxes = get_setting("MAILBOXES")
    for entry in mailboxes.values() if isinstance(mailboxes, Mapping) else ():
        password = entry.get("password") if isinstance(entry, Mapping) else None
        if isinstance(password, str) and password:
            raw.add(password)
            raw.add(_b64(password))
    # HTTP basic auth as providers use it ("api:<key>", "<key>:"), and the
    # key alone base64-encoded (AUTH LOGIN sends the password so).
    raw |= {
        encoded
        for secret in list(raw)
        if len(secret) >= _MIN_SECRET_LENGTH
        for encoded in (_b64(f"api:{secret}"), _b64(f"{secret}:"), _b64(secret))
    }
    return _with_encodings(raw)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _with_encodings(values: Iterable[str]) -> set[str]:
    variants: set[str] = set()
    for value in values:
        if len(value) < _MIN_SECRET_LENGTH:
            continue
        variants.update({value, quote(value, safe=""), quote(value)})
        spaced = "".join(value.split())
        if len(spaced) >= _MIN_SECRET_LENGTH:
            variants.add(spaced)
    return variants


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """``text`` with configured secrets and credential-shaped values masked."""
    if not text:
        return text
    secrets = configured_secrets() | _with_encodings(extra_secrets)
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _AUTH_BLOB.sub(lambda m: f"{m['name']}{REDACTED}", text)
    return _NAMED_SECRET.sub(lambda m: f"{m['name']}{REDACTED}", text)


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


class MailopsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus values that hold credentials whatever their name.

    Django masks settings and request META by *name* (API, TOKEN, KEY,
    SECRET, PASS, SIGNATURE). ``runserver`` copies the environment into
    every request's META, so ``MAILER_URL``, ``DATABASE_URL`` or
    ``CELERY_BROKER_URL`` would show with their passwords. Here a value
    that parses as a URL with a password is masked whole, and other strings
    go through :func:`redact`. Set it as ``DEFAULT_EXCEPTION_REPORTER_FILTER``.
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
        if not isinstance(value, str):
            return value
        if has_url_password(value):
            return self.cleansed_substitute
        return redact(value)
