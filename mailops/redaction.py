"""Keep credentials out of everything mailops stores or shows.

SMTP servers and provider APIs sometimes echo what they were sent (an AUTH
line, a request URL with a key, a JSON body with a token). Every error text
passes through :func:`redact` before it reaches a ``MailLog`` row, the
command's output or a log record.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from django.conf import settings

from mailops.conf import get_setting
from mailops.mailers.info import mailers_setting

REDACTED = "********"

# The same rule Django's SafeExceptionReporterFilter uses for setting names.
SECRET_NAME = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.IGNORECASE)

# Shorter values are too likely to match ordinary text ("on", "25", ...).
_MIN_SECRET_LENGTH = 4

# URL credentials and well-known "name=value" shapes, whatever the value.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]*@", re.I)
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
    """Every secret in ``MAILERS`` and ``ANYMAIL`` settings, with encoded forms."""
    raw: set[str] = set()
    for config in mailers_setting().values():
        if not isinstance(config, Mapping):
            continue
        raw |= secret_values(config.get("OPTIONS", {}))
        username = config.get("OPTIONS", {}).get("username")
        password = config.get("OPTIONS", {}).get("password")
        if username and password:
            # What AUTH PLAIN / AUTH LOGIN put on the wire, should a server echo it.
            raw.add(base64.b64encode(f"\0{username}\0{password}".encode()).decode())
            raw.add(base64.b64encode(password.encode()).decode())
    raw |= secret_values(getattr(settings, "ANYMAIL", {}) or {})
    # IMAP passwords of proof-of-arrival mailboxes (and what LOGIN/AUTH=PLAIN send).
    mailboxes = get_setting("MAILBOXES")
    for entry in mailboxes.values() if isinstance(mailboxes, Mapping) else ():
        password = entry.get("password") if isinstance(entry, Mapping) else None
        if isinstance(password, str) and password:
            raw.add(password)
            raw.add(base64.b64encode(password.encode()).decode())
    return _with_encodings(raw)


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
    return _NAMED_SECRET.sub(lambda m: f"{m['name']}{REDACTED}", text)
