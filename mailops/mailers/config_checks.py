"""The per-mailer system checks (``mailops.E002``-``E006``, ``W001``-``W006``).

Each reads ``settings.MAILERS`` as data; nothing here opens a connection
(:mod:`mailops.mailers.connection` does that). :mod:`mailops.checks`
registers them with the rest and lists every id.
"""

from __future__ import annotations

import difflib
from email.utils import parseaddr
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mailers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.conf import from_email_for, get_setting
from mailops.mailers.errors import unqualified_domain
from mailops.mailers.info import MailerInfo, MailerKind, TLSMode, configured_mailers, mailer_options
from mailops.mailers.known_hosts import suggest_host
from mailops.redaction import redact

# Lazy: formatted when a check runs, in the language active then.
SILENCE = gettext_lazy("If this is intended, add '{id}' to SILENCED_SYSTEM_CHECKS.")

# What Django's SMTP backend accepts in OPTIONS (it refuses anything else).
SMTP_OPTIONS = (
    "host",
    "port",
    "username",
    "password",
    "use_tls",
    "use_ssl",
    "timeout",
    "ssl_keyfile",
    "ssl_certfile",
    "fail_silently",
)

GMAIL_HOSTS = frozenset({"smtp.gmail.com", "smtp.googlemail.com"})
APP_PASSWORD_LENGTH = 16


def check_mailers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every per-mailer check, for every alias in MAILERS."""
    messages: list[checks.CheckMessage] = []
    for info in configured_mailers():
        if info.kind == MailerKind.BROKEN:
            messages.append(_broken_backend(info))
        elif info.kind == MailerKind.SMTP:
            messages += _smtp_checks(info)
        elif info.kind == MailerKind.PROVIDER:
            messages += _buildable(info)
    return messages


def _broken_backend(info: MailerInfo) -> checks.CheckMessage:
    return checks.Error(
        _("Mailer %(alias)r: BACKEND %(backend)r cannot be imported (%(import_error)s).")
        % {"alias": info.alias, "backend": info.backend, "import_error": redact(info.import_error)},
        hint=_(
            "Fix the dotted path in MAILERS[%(alias)r]['BACKEND'], or install the package that "
            "provides it."
        )
        % {"alias": info.alias},
        id="mailops.E002",
    )


def _smtp_checks(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    if not info.host:
        return [
            checks.Error(
                _("Mailer %(alias)r uses the SMTP backend but its OPTIONS have no 'host'.")
                % {"alias": alias},
                hint=_(
                    "Set MAILERS[%(alias)r]['OPTIONS']['host'] (the reference project takes it "
                    "from the mailer URL: smtp+tls://user:password@smtp.example.com)."
                )
                % {"alias": alias},
                id="mailops.E003",
            )
        ]
    messages: list[checks.CheckMessage] = []
    if info.tls_mode == TLSMode.CONFLICT:
        messages.append(
            checks.Error(
                _(
                    "Mailer %(alias)r turns on both STARTTLS (use_tls) and implicit TLS "
                    "(use_ssl); Django refuses to build it (InvalidMailer)."
                )
                % {"alias": alias},
                hint=_(
                    "Set only one: use_tls=True for STARTTLS on port 587 (smtp+tls://), or "
                    "use_ssl=True for implicit TLS on port 465 (smtps://)."
                ),
                id="mailops.E004",
            )
        )
    else:
        messages += _buildable(info)
    messages += _host_spelling(info)
    messages += _port_and_tls(info)
    messages += _unqualified_sender(info)
    if info.timeout is None:
        messages.append(
            checks.Warning(
                _(
                    "Mailer %(alias)r (%(address)s) has no timeout: a server that stops "
                    "answering blocks the request or worker sending through it indefinitely."
                )
                % {"alias": alias, "address": info.address},
                hint=_(
                    "Set MAILERS[%(alias)r]['OPTIONS']['timeout'] in seconds (?timeout=20 on the "
                    "mailer URL)."
                )
                % {"alias": alias},
                id="mailops.W005",
            )
        )
    if info.host.lower().rstrip(".") in GMAIL_HOSTS:
        messages += _gmail_checks(info)
    return messages


def _buildable(info: MailerInfo) -> list[checks.CheckMessage]:
    """E006: build the backend (which opens no connection) and report its refusal."""
    try:
        mailers[info.alias]
    except ImproperlyConfigured as error:
        hint = _(
            "Add the missing option to MAILERS[%(alias)r]['OPTIONS'] (a query "
            "parameter of its anymail+<provider>:// URL) or to the ANYMAIL setting."
        ) % {"alias": info.alias}
        if info.kind == MailerKind.SMTP:
            unknown = [name for name in mailer_options(info.alias) if name not in SMTP_OPTIONS]
            guesses = [
                f"{name!r} -> {close[0]!r}"
                for name in unknown
                if (close := difflib.get_close_matches(name, SMTP_OPTIONS, n=1))
            ]
            hint = _("The SMTP backend accepts only: %(options)s.") % {
                "options": ", ".join(SMTP_OPTIONS)
            }
            if guesses:
                hint += " " + _("Did you mean %(guesses)s?") % {"guesses": ", ".join(guesses)}
        return [
            checks.Error(
                _("Mailer %(alias)r (%(mailer)s) cannot be built: %(error)s")
                % {"alias": info.alias, "mailer": info.describe(), "error": redact(str(error))},
                hint=hint,
                id="mailops.E006",
            )
        ]
    return []


def _host_spelling(info: MailerInfo) -> list[checks.CheckMessage]:
    found = suggest_host(info.host)
    if found is None:
        return []
    provider, suggestion = found
    return [
        checks.Warning(
            _(
                "Mailer %(alias)r: host %(host)r looks like a mistyped %(name)s SMTP host; did "
                "you mean %(suggestion)r?"
            )
            % {
                "alias": info.alias,
                "host": info.host,
                "name": provider.name,
                "suggestion": suggestion,
            },
            hint=_(
                "Set MAILERS[%(alias)r]['OPTIONS']['host'] to %(suggestion)r (the host "
                "part of its mailer URL)."
            )
            % {"alias": info.alias, "suggestion": suggestion}
            + " "
            + SILENCE.format(id="mailops.W001"),
            id="mailops.W001",
        )
    ]


def _port_and_tls(info: MailerInfo) -> list[checks.CheckMessage]:
    alias, port, mode = info.alias, info.port, info.tls_mode
    if not info.port_configured or mode == TLSMode.CONFLICT:
        # Without a port Django picks the one that matches the TLS mode.
        return _auth_in_clear(info) if mode == TLSMode.NONE else []
    if port == 587 and mode != TLSMode.STARTTLS:
        problem = (
            _(
                "Mailer %(alias)r uses implicit TLS (use_ssl) on port 587, where servers "
                "expect STARTTLS: the TLS handshake fails."
            )
            if mode == TLSMode.IMPLICIT
            else _(
                "Mailer %(alias)r connects to port 587 without STARTTLS: servers refuse AUTH "
                "there (530) or the password crosses the network unencrypted."
            )
        )
        return [
            checks.Warning(
                problem % {"alias": alias},
                hint=_(
                    "Use STARTTLS on port 587 (smtp+tls://, use_tls=True), or implicit TLS "
                    "on port 465 (smtps://, use_ssl=True)."
                ),
                id="mailops.W002",
            )
        ]
    if port == 465 and mode != TLSMode.IMPLICIT:
        problem = (
            _(
                "Mailer %(alias)r uses STARTTLS (use_tls) on port 465, where servers expect "
                "implicit TLS: the connection hangs until the timeout."
            )
            if mode == TLSMode.STARTTLS
            else _(
                "Mailer %(alias)r connects to port 465 without TLS, where servers expect "
                "implicit TLS: the connection hangs until the timeout."
            )
        )
        return [
            checks.Warning(
                problem % {"alias": alias},
                hint=_(
                    "Use implicit TLS on port 465 (smtps://, use_ssl=True), or STARTTLS on "
                    "port 587 (smtp+tls://, use_tls=True)."
                ),
                id="mailops.W003",
            )
        ]
    return _auth_in_clear(info) if mode == TLSMode.NONE else []


def _auth_in_clear(info: MailerInfo) -> list[checks.CheckMessage]:
    if not info.username or info.loopback:
        return []
    return [
        checks.Warning(
            _("Mailer %(alias)r sends its username and password to %(address)s without TLS.")
            % {"alias": info.alias, "address": info.address},
            hint=_(
                "Set MAILERS[%(alias)r]['OPTIONS'] to use STARTTLS (use_tls=True, port "
                "587; smtp+tls:// on a mailer URL) or implicit TLS (use_ssl=True, port 465; "
                "smtps://); plain SMTP with a password is only safe on loopback."
            )
            % {"alias": info.alias}
            + " "
            + SILENCE.format(id="mailops.W004"),
            id="mailops.W004",
        )
    ]


def _gmail_checks(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    password = mailer_options(alias).get("password")
    password = "".join(password.split()) if isinstance(password, str) else ""
    hint = _(
        "Google accepts only an App Password over SMTP: turn on 2-Step Verification, create "
        "one at https://myaccount.google.com/apppasswords and use its 16 letters (spaces "
        "are fine) as MAILERS[%(alias)r]['OPTIONS']['password'], with the Gmail address as "
        "'username' (the reference project reads GMAIL_USER and GMAIL_APP_PASSWORD). "
        "The account's own password is refused with 534 or 535."
    ) % {"alias": alias}
    problem = ""
    if not info.username:
        problem = _("Gmail mailer %(alias)r has no username (the Gmail address it signs in as).")
    elif not password:
        problem = _("Gmail mailer %(alias)r has no password.")
    elif not (len(password) == APP_PASSWORD_LENGTH and password.isascii() and password.isalpha()):
        problem = _(
            "Gmail mailer %(alias)r has a password that is not a 16-letter App Password "
            "(after removing spaces)."
        )
    messages: list[checks.CheckMessage] = []
    if problem:
        messages.append(
            checks.Error(
                problem % {"alias": alias},
                hint=hint,
                id="mailops.E005",
            )
        )
    if info.username:
        messages += _gmail_from(info)
    return messages


def _gmail_from(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    sender = from_email_for(alias)
    address = parseaddr(sender)[1] or sender
    if address.strip().lower() == info.username.strip().lower():
        return []
    from_emails = get_setting("FROM_EMAILS")
    source = (
        f"MAILOPS['FROM_EMAILS'][{alias!r}]"
        if isinstance(from_emails, dict) and from_emails.get(alias)
        else "DEFAULT_FROM_EMAIL"
    )
    return [
        checks.Warning(
            _(
                "Gmail mailer %(alias)r sends From %(address)r (%(source)s) but signs in as "
                "%(username)r: Gmail rewrites the From header to the signed-in account unless "
                'that address is a verified "Send mail as" alias.'
            )
            % {"alias": alias, "address": address, "source": source, "username": info.username},
            hint=_(
                "Set %(source)s to %(username)r (MAILOPS['FROM_EMAILS'][%(alias)r] wins "
                "over DEFAULT_FROM_EMAIL; ?from= on a mailer URL sets it), or add "
                "%(address)r under Gmail settings → Accounts → Send mail as."
            )
            % {"source": source, "username": info.username, "alias": alias, "address": address}
            + " "
            + SILENCE.format(id="mailops.W006"),
            id="mailops.W006",
        )
    ]


def _unqualified_sender(info: MailerInfo) -> list[checks.CheckMessage]:
    """W012: a real relay asked to send from a domain without a dot (``mailops@localhost``).

    A loopback host counts when the mailer signs in: a mail catcher takes
    anything without a password; a local Postfix's submission port, or a
    tunnel to a provider, checks the sender like any relay.
    """
    if not (info.delivers_real_mail or (info.loopback and info.username)):
        return []
    address = parseaddr(from_email_for(info.alias))[1]
    if address and not unqualified_domain(address):
        return []
    source = (
        f"MAILOPS['FROM_EMAILS'][{info.alias!r}]"
        if info.alias in (get_setting("FROM_EMAILS") or {})
        else "DEFAULT_FROM_EMAIL"
    )
    return [
        checks.Warning(
            _(
                "Mailer %(alias)r (%(host)s) sends from %(address)r, whose domain is not fully "
                "qualified: relays that check the sender (Postfix's reject_non_fqdn_sender, most "
                "providers) refuse every message."
            )
            % {"alias": info.alias, "host": info.host, "address": address or _("(no address)")},
            hint=_("Set %(source)s to an address at your own domain, e.g. ops@example.com.")
            % {"source": source}
            + " "
            + SILENCE.format(id="mailops.W012"),
            id="mailops.W012",
        )
    ]
