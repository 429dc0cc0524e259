"""The per-mailer system checks (``mailops.E002``-``E006``, ``W001``, ``W005``, ``W006``, ``W012``).

Each reads the mailers' configuration as data (``MAILERS``, or the
``default`` mailer Django builds from the classic ``EMAIL_*`` settings, see
:mod:`mailops.mailers.registry`; hints name the setting the user wrote);
nothing here opens a connection (:mod:`mailops.mailers.connection` does that). :mod:`mailops.checks`
registers them with the rest and lists every id; the port and TLS checks
(W002-W004, W013) are in :mod:`mailops.mailers.tls_checks`.
"""

from __future__ import annotations

import difflib
from email.utils import parseaddr
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mailers
from django.utils.translation import gettext as _

from mailops.conf import from_email_for, get_setting
from mailops.mailers.errors import unqualified_domain
from mailops.mailers.info import MailerInfo, MailerKind, TLSMode, configured_mailers, mailer_options
from mailops.mailers.known_hosts import suggest_host
from mailops.mailers.registry import setting_name
from mailops.mailers.tls_checks import SILENCE, port_and_tls
from mailops.redaction import redact

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
    if info.classic:
        return checks.Error(
            _(
                "Mailer %(alias)r (built by Django from the EMAIL_* settings) cannot be "
                "built: %(import_error)s"
            )
            % {"alias": info.alias, "import_error": redact(info.import_error)},
            hint=_(
                "Fix EMAIL_BACKEND (a dotted path to an installed backend) or set only one "
                "of EMAIL_USE_TLS and EMAIL_USE_SSL."
            ),
            id="mailops.E002",
        )
    return checks.Error(
        _("Mailer %(alias)r: BACKEND %(backend)r cannot be imported (%(import_error)s).")
        % {"alias": info.alias, "backend": info.backend, "import_error": redact(info.import_error)},
        hint=_("Fix the dotted path in %(setting)s, or install the package that provides it.")
        % {"setting": setting_name(info.alias, "BACKEND")},
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
                    "Set %(setting)s (the reference project takes it from the mailer URL: "
                    "smtp+tls://user:password@smtp.example.com)."
                )
                % {"setting": setting_name(alias, "host")},
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
    messages += port_and_tls(info)
    messages += _unqualified_sender(info)
    if info.timeout is None:
        messages.append(
            checks.Warning(
                _(
                    "Mailer %(alias)r (%(address)s) has no timeout: a server that stops "
                    "answering blocks the request or worker sending through it indefinitely."
                )
                % {"alias": alias, "address": info.address},
                hint=_("Set %(setting)s in seconds (?timeout=20 on the mailer URL).")
                % {"setting": setting_name(alias, "timeout")},
                id="mailops.W005",
            )
        )
    if info.host.lower().rstrip(".") in GMAIL_HOSTS:
        messages += _gmail_checks(info)
    return messages


def _buildable(info: MailerInfo) -> list[checks.CheckMessage]:
    """E006: build the backend (which opens no connection) and report its refusal."""
    if info.classic:
        # Already built by the registry (a failure is E002); building it again
        # without EMAIL_* settings would make Django warn from a check.
        return []
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
            hint=_("Set %(setting)s to %(suggestion)r (the host part of its mailer URL).")
            % {"setting": setting_name(info.alias, "host"), "suggestion": suggestion}
            + " "
            + SILENCE.format(id="mailops.W001"),
            id="mailops.W001",
        )
    ]


def _gmail_checks(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    password = mailer_options(alias).get("password")
    password = "".join(password.split()) if isinstance(password, str) else ""
    hint = _(
        "Google accepts only an App Password over SMTP: turn on 2-Step Verification, create "
        "one at https://myaccount.google.com/apppasswords and use its 16 letters (spaces "
        "are fine) as %(password)s, with the Gmail address as %(username)s (the reference "
        "project reads GMAIL_USER and GMAIL_APP_PASSWORD). "
        "The account's own password is refused with 534 or 535."
    ) % {"password": setting_name(alias, "password"), "username": setting_name(alias, "username")}
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
