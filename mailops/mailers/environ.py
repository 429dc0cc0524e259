"""Build Django 6.1 ``MAILERS`` entries from environment variables.

A project calls :func:`mailers_from_environ` from its settings so that the
transport is chosen by the environment alone (12-factor)::

    MAILER_URL=smtp+tls://me%40example.com:app-password@smtp.example.com
    MAILER_BACKUP_URL=anymail+postmark://?server_token=...
    GMAIL_USER=me@gmail.com GMAIL_APP_PASSWORD="abcd efgh ijkl mnop"

Any mailer URL also takes ``rate=`` (messages per second) and
``daily_quota=`` (messages per rolling 24 hours), which become that alias'
``MAILOPS["THROTTLE"]`` entry, and ``dkim_selector=`` (DKIM selectors for
``manage.py maildoctor``, comma-separated), which goes to
``MAILOPS["DKIM_SELECTORS"]``; the Gmail preset gets Gmail's personal-account
quota (``GMAIL_DAILY_QUOTA``, default 500) unless told otherwise.

The URLs are parsed here and never kept in settings as a whole: Django's
error reporter hides settings named like ``*PASS*``/``*KEY*`` but would show a
``MAILER_URL`` setting verbatim, password included.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from mailops.exceptions import MailerURLError

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
OUTBOX_BACKEND = "mailops.backends.outbox.EmailBackend"

GMAIL_HOST = "smtp.gmail.com"
GMAIL_ALIAS = "gmail"
# Gmail blocks a personal account for up to a day once it passes about 500
# messages in 24 hours (2,000 for Workspace): stop short of that by default.
GMAIL_DAILY_QUOTA = 500

# Anymail's backend class names per ESP, so that ``anymail+ses://`` works
# without the user knowing the module layout.
ANYMAIL_BACKENDS = {
    "amazon_ses": "anymail.backends.amazon_ses.EmailBackend",
    "ses": "anymail.backends.amazon_ses.EmailBackend",
    "brevo": "anymail.backends.brevo.EmailBackend",
    "mailersend": "anymail.backends.mailersend.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "mailjet": "anymail.backends.mailjet.EmailBackend",
    "mandrill": "anymail.backends.mandrill.EmailBackend",
    "postal": "anymail.backends.postal.EmailBackend",
    "postmark": "anymail.backends.postmark.EmailBackend",
    "resend": "anymail.backends.resend.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "sparkpost": "anymail.backends.sparkpost.EmailBackend",
    "unisender_go": "anymail.backends.unisender_go.EmailBackend",
}

SMTP_SCHEMES = {
    # scheme: (use_tls, use_ssl)
    "smtp": (False, False),
    "smtp+tls": (True, False),
    "smtps": (False, True),
}

_ALIAS_VARIABLE = re.compile(r"^MAILER_(?P<alias>[A-Z0-9_]+)_URL$")


@dataclass
class MailerEnvironment:
    """What the environment says about mail: MAILERS plus per-alias senders."""

    mailers: dict[str, dict[str, Any]] = field(default_factory=dict)
    from_emails: dict[str, str] = field(default_factory=dict)
    # Per-alias limits for MAILOPS["THROTTLE"]: {"rate": ..., "daily_quota": ...}.
    throttle: dict[str, dict[str, float | int]] = field(default_factory=dict)
    # Per-alias DKIM selectors (?dkim_selector=) for MAILOPS["DKIM_SELECTORS"].
    dkim_selectors: dict[str, list[str]] = field(default_factory=dict)


def split_url(
    url: str, *, variable: str, error: type[MailerURLError] = MailerURLError
) -> tuple[SplitResult, int | None]:
    """``urlsplit(url)`` and its port; a bad URL or port is ``error`` naming ``variable`` only."""
    try:
        parts = urlsplit(url.strip())
        return parts, parts.port
    except ValueError:
        raise error(variable, "is not a valid URL (check the port number)") from None


def parse_mailer_url(url: str, *, variable: str) -> tuple[dict[str, Any], str | None]:
    """Return ``(MAILERS entry, from address or None)`` for one mailer URL.

    ``variable`` names the environment variable in error messages; the URL
    itself is never echoed, since it usually carries a password.
    """
    parts, port = split_url(url, variable=variable)
    scheme = parts.scheme.lower()
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    from_email = query.pop("from", None) or None

    if scheme == "console":
        _refuse_query(variable, query)
        return {"BACKEND": CONSOLE_BACKEND}, from_email
    if scheme == "locmem":
        _refuse_query(variable, query)
        return {"BACKEND": LOCMEM_BACKEND}, from_email
    if scheme == "file":
        _refuse_query(variable, query)
        path = unquote(parts.path)
        if parts.netloc or not path.startswith("/"):
            raise MailerURLError(
                variable, "a file:// mailer needs an absolute path, e.g. file:///srv/outbox"
            )
        return {"BACKEND": OUTBOX_BACKEND, "OPTIONS": {"file_path": path}}, from_email
    if scheme in SMTP_SCHEMES:
        return _smtp_entry(parts.hostname, port, parts, query, scheme, variable), from_email
    if scheme.startswith("anymail+"):
        esp = scheme.removeprefix("anymail+").replace("-", "_")
        try:
            backend = ANYMAIL_BACKENDS[esp]
        except KeyError:
            known = ", ".join(sorted(ANYMAIL_BACKENDS))
            raise MailerURLError(
                variable, f"unknown anymail provider {esp!r}; known: {known}"
            ) from None
        options: dict[str, Any] = dict(query)
        if "timeout" in options:
            options["timeout"] = parse_timeout(options["timeout"], variable)
        entry: dict[str, Any] = {"BACKEND": backend}
        if options:
            entry["OPTIONS"] = options
        return entry, from_email
    shown = scheme or "(none)"
    raise MailerURLError(
        variable,
        f"unknown scheme {shown!r}; use console://, locmem://, file:///dir, "
        "smtp://, smtp+tls://, smtps:// or anymail+<provider>://",
    )


def _smtp_entry(
    host: str | None,
    port: int | None,
    parts: Any,
    query: dict[str, str],
    scheme: str,
    variable: str,
) -> dict[str, Any]:
    if not host:
        raise MailerURLError(variable, "an SMTP mailer URL needs a host")
    use_tls, use_ssl = SMTP_SCHEMES[scheme]
    options: dict[str, Any] = {"host": host, "use_tls": use_tls, "use_ssl": use_ssl}
    if port is not None:
        options["port"] = port
    if parts.username:
        options["username"] = unquote(parts.username)
    if parts.password:
        options["password"] = unquote(parts.password)
    if "timeout" in query:
        options["timeout"] = parse_timeout(query.pop("timeout"), variable)
    if query:
        raise MailerURLError(
            variable,
            f"{_unknown(query)}; SMTP takes timeout=, from=, rate=, "
            "daily_quota= and dkim_selector=",
        )
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": options}


def throttle_from_url(url: str, *, variable: str) -> tuple[str, dict[str, float | int]]:
    """Split ``rate=`` and ``daily_quota=`` off a mailer URL: ``(url without them, limits)``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        # parse_mailer_url reports the malformed URL.
        return url, {}
    query = parse_qsl(parts.query, keep_blank_values=True)
    limits: dict[str, float | int] = {}
    kept = []
    for name, value in query:
        if name == "rate":
            limits["rate"] = _positive(value, variable, name, float)
        elif name == "daily_quota":
            limits["daily_quota"] = _positive(value, variable, name, int)
        else:
            kept.append((name, value))
    if not limits:
        return url, {}
    return urlunsplit(parts._replace(query=urlencode(kept))), limits


def dkim_selectors_from_url(url: str, *, variable: str) -> tuple[str, list[str]]:
    """Split ``dkim_selector=`` (comma-separated, repeatable) off a mailer URL."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url, []
    query = parse_qsl(parts.query, keep_blank_values=True)
    selectors = [
        selector.strip()
        for name, value in query
        if name == "dkim_selector"
        for selector in value.split(",")
        if selector.strip()
    ]
    if len(selectors) < sum(1 for name, _ in query if name == "dkim_selector"):
        raise MailerURLError(variable, "dkim_selector= needs a selector name")
    for selector in selectors:
        if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", selector):
            raise MailerURLError(variable, f"dkim_selector={selector!r} is not a DNS label")
    if not selectors:
        return url, []
    kept = [(name, value) for name, value in query if name != "dkim_selector"]
    return urlunsplit(parts._replace(query=urlencode(kept))), selectors


# Query values are not echoed in errors: a password with an unencoded "?"
# or "&" ends up in the query, and would be shown.
def _positive(value: str, variable: str, name: str, kind: type[float] | type[int]) -> float | int:
    unit = "a whole number" if kind is int else "a number"
    try:
        number = kind(value)
    except ValueError:
        raise MailerURLError(variable, f"{name}= is not {unit}") from None
    if not math.isfinite(number):
        # nan and inf parse as floats and would break every send's arithmetic.
        raise MailerURLError(variable, f"{name}= must be a finite number")
    if number <= 0:
        raise MailerURLError(variable, f"{name} must be greater than zero")
    return number


def parse_timeout(value: str, variable: str) -> float:
    """``?timeout=`` of a mailer (or mailbox) URL: seconds, positive and finite."""
    try:
        timeout = float(value)
    except ValueError:
        raise MailerURLError(variable, "timeout= is not a number") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise MailerURLError(variable, "timeout must be a positive, finite number of seconds")
    return timeout


_PARAMETER_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def _unknown(query: Mapping[str, str]) -> str:
    """Name unknown parameters only when they look like names (never password pieces)."""
    names = sorted(query)
    if all(_PARAMETER_NAME.fullmatch(name) for name in names):
        # Read while settings load, before translations can be: English, counted by hand.
        noun = "parameter" if len(names) == 1 else "parameters"
        return f"unknown query {noun} {', '.join(names)}"
    return (
        "unknown or malformed query parameters (not shown: if a user name or password "
        "contains '?', '&', '#', '/' or '@', percent-encode it, e.g. '?' as %3F)"
    )


def _refuse_query(variable: str, query: Mapping[str, str]) -> None:
    if query:
        raise MailerURLError(variable, _unknown(query))


def normalize_app_password(password: str) -> str:
    """Google shows app passwords as four groups of four letters; drop the spaces."""
    return "".join(password.split())


def gmail_entry(user: str, app_password: str) -> dict[str, Any]:
    """The MAILERS entry for Gmail with an App Password (STARTTLS on 587)."""
    return {
        "BACKEND": SMTP_BACKEND,
        "OPTIONS": {
            "host": GMAIL_HOST,
            "port": 587,
            "use_tls": True,
            "use_ssl": False,
            "username": user.strip(),
            "password": normalize_app_password(app_password),
            "timeout": 20,
        },
    }


def mailers_from_environ(environ: Mapping[str, str], *, outbox_dir: Path) -> MailerEnvironment:
    """Read ``MAILER_URL``, ``MAILER_<ALIAS>_URL`` and the Gmail preset.

    With nothing set, ``default`` prints to the console and ``outbox`` writes
    one ``.eml`` file per message under ``outbox_dir``.
    """
    result = MailerEnvironment()
    default_url = environ.get("MAILER_URL", "").strip()
    if default_url:
        _add(result, "default", default_url, "MAILER_URL")
    else:
        result.mailers["default"] = {"BACKEND": CONSOLE_BACKEND}
        result.mailers["outbox"] = {
            "BACKEND": OUTBOX_BACKEND,
            "OPTIONS": {"file_path": str(outbox_dir)},
        }
    for variable in sorted(environ):
        match = _ALIAS_VARIABLE.match(variable)
        if match and environ[variable].strip():
            alias = match["alias"].lower()
            _add(result, alias, environ[variable], variable)

    gmail_user = environ.get("GMAIL_USER", "").strip()
    gmail_password = environ.get("GMAIL_APP_PASSWORD", "")
    if gmail_user or gmail_password.strip():
        if not (gmail_user and gmail_password.strip()):
            missing = "GMAIL_APP_PASSWORD" if gmail_user else "GMAIL_USER"
            raise MailerURLError(missing, "is required when the other GMAIL_* variable is set")
        if GMAIL_ALIAS in result.mailers:
            raise MailerURLError(
                "MAILER_GMAIL_URL", "conflicts with GMAIL_USER/GMAIL_APP_PASSWORD; set only one"
            )
        result.mailers[GMAIL_ALIAS] = gmail_entry(gmail_user, gmail_password)
        quota = environ.get("GMAIL_DAILY_QUOTA", "").strip() or str(GMAIL_DAILY_QUOTA)
        if quota != "0":
            result.throttle[GMAIL_ALIAS] = {
                "daily_quota": _positive(quota, "GMAIL_DAILY_QUOTA", "GMAIL_DAILY_QUOTA", int)
            }
    return result


def _add(result: MailerEnvironment, alias: str, url: str, variable: str) -> None:
    url, limits = throttle_from_url(url, variable=variable)
    url, selectors = dkim_selectors_from_url(url, variable=variable)
    if selectors:
        result.dkim_selectors[alias] = selectors
    entry, from_email = parse_mailer_url(url, variable=variable)
    result.mailers[alias] = entry
    if limits:
        result.throttle[alias] = limits
    if from_email:
        result.from_emails[alias] = from_email
