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
from mailops.mailers.anymail_providers import (
    SES_CLIENT_PARAMETERS,
    SES_SESSION_PARAMETERS,
    backend_path,
    find_provider,
    provider_listing,
    url_name,
)

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
LOCMEM_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
OUTBOX_BACKEND = "mailops.backends.outbox.EmailBackend"

GMAIL_HOST = "smtp.gmail.com"
GMAIL_ALIAS = "gmail"
# Gmail blocks a personal account for up to a day once it passes about 500
# messages in 24 hours (2,000 for Workspace): stop short of that by default.
GMAIL_DAILY_QUOTA = 500

SMTP_SCHEMES = {
    # scheme: (use_tls, use_ssl)
    "smtp": (False, False),
    "smtp+tls": (True, False),
    "smtps": (False, True),
}

_ALIAS_VARIABLE = re.compile(r"^MAILER_(?P<alias>[A-Z0-9_]+)_URL$")
_PARAMETER_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


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
    """``urlsplit(url)`` and its port; a bad URL or port is ``error`` naming ``variable`` only.

    A reserved character left unencoded in the user name or password (``#``,
    ``?``, ``/``, an extra ``@``, ``[``, ``]``) is refused, naming the
    character: ``urlsplit`` would otherwise read ``smtp://me:25#x@host`` as
    host ``me``, port 25 and no password, without a word.
    """
    url = url.strip()
    _refuse_unencoded_userinfo(url, variable=variable, error=error)
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError:
        raise error(variable, "is not a valid URL (check the port number)") from None


# Characters that end or split a URL's authority (RFC 3986 §3.2), percent-encoded.
_PERCENT_ENCODED = {"#": "%23", "?": "%3F", "/": "%2F", "@": "%40", "[": "%5B", "]": "%5D"}


def _refuse_unencoded_userinfo(url: str, *, variable: str, error: type[MailerURLError]) -> None:
    # Only the character is named: the URL around it holds the password.
    def refuse(char: str, problem: str, where: str = "the user name or password") -> MailerURLError:
        return error(
            variable,
            f"{problem}; if {where} contains {char!r}, percent-encode it as "
            f"{_PERCENT_ENCODED[char]} (the URL is not shown: it holds secrets)",
        )

    if "#" in url:
        # No mailer or mailbox URL has a fragment: a "#" belongs to a secret.
        where = "the user name, password or a query value"
        raise refuse("#", "has a '#' that is not percent-encoded", where)
    _scheme, separator, rest = url.partition("://")
    if not separator:
        return
    end = next((index for index, char in enumerate(rest) if char in "/?"), len(rest))
    authority = rest[:end]
    if authority.count("@") > 1:
        raise refuse("@", "has more than one '@' before the host")
    userinfo = authority.rpartition("@")[0]
    for char in "[]":
        if char in userinfo:
            raise refuse(char, f"has a {char!r} that is not percent-encoded before the host")
    tail = rest[end:]
    at = tail.find("@")
    # An "@" after the cut, before any "=", cannot be a query value's
    # (?from=ops@example.com is one): the "/" or "?" cut the user info short.
    if authority and at != -1 and "=" not in tail[:at]:
        raise refuse(tail[0], f"has an '@' after a {tail[0]!r} that is not percent-encoded")


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
        return _anymail_entry(scheme.removeprefix("anymail+"), query, variable), from_email
    _refuse_underscore_scheme(url, variable)
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
            f"{unknown_query_keys(query)}; SMTP takes timeout=, from=, rate=, "
            "daily_quota= and dkim_selector=",
        )
    return {"BACKEND": SMTP_BACKEND, "OPTIONS": options}


def _anymail_entry(name: str, query: dict[str, str], variable: str) -> dict[str, Any]:
    provider = find_provider(name)
    if provider is None:
        raise MailerURLError(
            variable,
            f"unknown anymail provider {name!r}; the installed django-anymail has: "
            f"{provider_listing()}",
        )
    options: dict[str, Any] = dict(query)
    if "timeout" in options:
        options["timeout"] = parse_timeout(options["timeout"], variable)
    if provider == "amazon_ses":
        for option, names in (
            ("session_params", SES_SESSION_PARAMETERS),
            ("client_params", SES_CLIENT_PARAMETERS),
        ):
            params = {key: options.pop(key) for key in names if key in options}
            if params:
                options[option] = params
    entry: dict[str, Any] = {"BACKEND": backend_path(provider)}
    if options:
        entry["OPTIONS"] = options
    return entry


def _refuse_underscore_scheme(url: str, variable: str) -> None:
    """``anymail+amazon_ses://`` has no scheme for ``urlsplit``: say which form works."""
    match = re.match(r"(?i)anymail\+([A-Za-z0-9_.+-]*)://", url.strip())
    if not match or "_" not in match[1]:
        return
    name = match[1]
    provider = find_provider(name)
    if provider is None:
        raise MailerURLError(
            variable,
            f"a URL scheme cannot contain '_' and {name!r} is no installed anymail "
            f"provider; the installed django-anymail has: {provider_listing()}",
        )
    raise MailerURLError(
        variable,
        f"a URL scheme cannot contain '_': write anymail+{url_name(provider)}:// "
        f"(or anymail+{provider.replace('_', '-')}://) for {name!r}",
    )


def throttle_from_url(url: str, *, variable: str) -> tuple[str, dict[str, float | int]]:
    """Split ``rate=`` and ``daily_quota=`` off a mailer URL: ``(url without them, limits)``."""
    parts, _port = split_url(url, variable=variable)
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
    parts, _port = split_url(url, variable=variable)
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


def unknown_query_keys(query: Mapping[str, str]) -> str:
    """Name unknown parameters only when they look like names (never password pieces)."""
    names = sorted(query)
    if all(_PARAMETER_NAME.fullmatch(name) for name in names):
        noun = "parameter" if len(names) == 1 else "parameters"  # English: read before i18n
        return f"unknown query {noun} {', '.join(names)}"
    return (
        "unknown or malformed query parameters (not shown: if a user name or password "
        "contains '?', '&', '#', '/' or '@', percent-encode it, e.g. '?' as %3F)"
    )


def _refuse_query(variable: str, query: Mapping[str, str]) -> None:
    if query:
        raise MailerURLError(variable, unknown_query_keys(query))


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
