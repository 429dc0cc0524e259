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
import re
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import mailers

from mailops.conf import from_email_for, get_setting
from mailops.mailers.errors import unqualified_domain
from mailops.mailers.info import MailerInfo, MailerKind, TLSMode, configured_mailers, mailer_options
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


@dataclass(frozen=True)
class KnownProvider:
    """A provider's SMTP host names, and the domain labels that point at it."""

    name: str
    # Second-level domain labels meaning "this provider" (``gmail`` in smtp.gmail.co).
    labels: frozenset[str]
    # Correct hosts, offered as suggestions (the closest one wins).
    hosts: tuple[str, ...]
    # Also correct, but never suggested (legacy names, per-tenant endpoints).
    also_valid: str = r"(?!)"
    # Only hosts mentioning this are the provider's mail hosts (amazonaws.com
    # also names EC2 machines that may run a perfectly good relay).
    mentions: str = ""


KNOWN_PROVIDERS = (
    KnownProvider(
        "Gmail",
        frozenset({"gmail", "googlemail", "google"}),
        ("smtp.gmail.com", "smtp-relay.gmail.com"),
        # smtp.googlemail.com is Google's older name for the same service;
        # aspmx.l.google.com is the restricted server for Google-hosted recipients.
        also_valid=r"smtp\.googlemail\.com|(alt\d\.)?aspmx\.l\.google\.com",
    ),
    KnownProvider(
        "Microsoft 365 / Outlook.com",
        frozenset({"office365", "outlook", "hotmail"}),
        ("smtp.office365.com", "smtp-mail.outlook.com"),
        also_valid=r"[a-z0-9-]+\.mail\.protection\.outlook\.com",
    ),
    KnownProvider("SendGrid", frozenset({"sendgrid"}), ("smtp.sendgrid.net",)),
    KnownProvider("Mailgun", frozenset({"mailgun"}), ("smtp.mailgun.org", "smtp.eu.mailgun.org")),
    KnownProvider(
        "Brevo",
        frozenset({"brevo", "sendinblue"}),
        ("smtp-relay.brevo.com",),
        also_valid=r"smtp-relay\.sendinblue\.com",
    ),
    KnownProvider(
        "Postmark",
        frozenset({"postmarkapp", "postmark"}),
        ("smtp.postmarkapp.com", "smtp-broadcasts.postmarkapp.com"),
    ),
    KnownProvider(
        "Amazon SES",
        frozenset({"amazonaws", "amazonses"}),
        ("email-smtp.<region>.amazonaws.com",),
        also_valid=r"email-smtp(-fips)?\.[a-z]{2}(-gov)?-[a-z]+-\d\.amazonaws\.com",
        mentions=r"email|smtp|\bses\b",
    ),
)

_AWS_REGION = re.compile(r"\b[a-z]{2}(?:-gov)?-[a-z]+-\d\b")


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
            f"Mailer {info.alias!r} (built by Django from the EMAIL_* settings) cannot be "
            f"built: {redact(info.import_error)}",
            hint="Fix EMAIL_BACKEND (a dotted path to an installed backend) or set only one "
            "of EMAIL_USE_TLS and EMAIL_USE_SSL.",
            id="mailops.E002",
        )
    return checks.Error(
        f"Mailer {info.alias!r}: BACKEND {info.backend!r} cannot be imported "
        f"({redact(info.import_error)}).",
        hint=f"Fix the dotted path in {setting_name(info.alias, 'BACKEND')}, or install the "
        "package that provides it.",
        id="mailops.E002",
    )


def _smtp_checks(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    if not info.host:
        return [
            checks.Error(
                f"Mailer {alias!r} uses the SMTP backend but its OPTIONS have no 'host'.",
                hint=f"Set {setting_name(alias, 'host')} (the reference project takes "
                "it from the mailer URL: smtp+tls://user:password@smtp.example.com).",
                id="mailops.E003",
            )
        ]
    messages: list[checks.CheckMessage] = []
    if info.tls_mode == TLSMode.CONFLICT:
        messages.append(
            checks.Error(
                f"Mailer {alias!r} turns on both STARTTLS (use_tls) and implicit TLS "
                "(use_ssl); Django refuses to build it (InvalidMailer).",
                hint="Set only one: use_tls=True for STARTTLS on port 587 (smtp+tls://), or "
                "use_ssl=True for implicit TLS on port 465 (smtps://).",
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
                f"Mailer {alias!r} ({info.address}) has no timeout: a server that stops "
                "answering blocks the request or worker sending through it indefinitely.",
                hint=f"Set {setting_name(alias, 'timeout')} in seconds "
                "(?timeout=20 on the mailer URL).",
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
        hint = (
            f"Add the missing option to MAILERS[{info.alias!r}]['OPTIONS'] (a query "
            f"parameter of its anymail+<provider>:// URL) or to the ANYMAIL setting."
        )
        if info.kind == MailerKind.SMTP:
            unknown = [name for name in mailer_options(info.alias) if name not in SMTP_OPTIONS]
            guesses = [
                f"{name!r} -> {close[0]!r}"
                for name in unknown
                if (close := difflib.get_close_matches(name, SMTP_OPTIONS, n=1))
            ]
            hint = f"The SMTP backend accepts only: {', '.join(SMTP_OPTIONS)}." + (
                f" Did you mean {', '.join(guesses)}?" if guesses else ""
            )
        return [
            checks.Error(
                f"Mailer {info.alias!r} ({info.describe()}) cannot be built: {redact(str(error))}",
                hint=hint,
                id="mailops.E006",
            )
        ]
    return []


def suggest_host(host: str) -> tuple[KnownProvider, str] | None:
    """``(provider, suggested host)`` when ``host`` looks like a mistyped known host."""
    host = host.strip().lower().rstrip(".")
    labels = host.split(".")
    if len(labels) < 2:
        return None
    # The second-level label carries the brand (gmail in smtp.gmail.co); a close
    # match must start with the same letter so that e.g. smtp.mail.ru or
    # email.example.org are not mistaken for Gmail.
    brand = labels[-2]
    for provider in KNOWN_PROVIDERS:
        if host in provider.hosts or re.fullmatch(provider.also_valid, host):
            return None
    for provider in KNOWN_PROVIDERS:
        if brand in provider.labels or (
            len(brand) >= 5
            and any(
                label[0] == brand[0] and difflib.SequenceMatcher(None, brand, label).ratio() >= 0.8
                for label in provider.labels
            )
        ):
            if provider.mentions and not re.search(provider.mentions, host.replace("-", " ")):
                return None
            return provider, _closest_host(provider, host)
    return None


def _closest_host(provider: KnownProvider, host: str) -> str:
    if provider.name == "Amazon SES":
        region = _AWS_REGION.search(host)
        return f"email-smtp.{region[0] if region else '<region>'}.amazonaws.com"
    return max(provider.hosts, key=lambda known: difflib.SequenceMatcher(None, host, known).ratio())


def _host_spelling(info: MailerInfo) -> list[checks.CheckMessage]:
    found = suggest_host(info.host)
    if found is None:
        return []
    provider, suggestion = found
    return [
        checks.Warning(
            f"Mailer {info.alias!r}: host {info.host!r} looks like a mistyped "
            f"{provider.name} SMTP host; did you mean {suggestion!r}?",
            hint=f"Set {setting_name(info.alias, 'host')} to {suggestion!r} (the host "
            f"part of its mailer URL). " + SILENCE.format(id="mailops.W001"),
            id="mailops.W001",
        )
    ]


def _gmail_checks(info: MailerInfo) -> list[checks.CheckMessage]:
    alias = info.alias
    password = mailer_options(alias).get("password")
    password = "".join(password.split()) if isinstance(password, str) else ""
    hint = (
        "Google accepts only an App Password over SMTP: turn on 2-Step Verification, create "
        "one at https://myaccount.google.com/apppasswords and use its 16 letters (spaces "
        f"are fine) as {setting_name(alias, 'password')}, with the Gmail address as "
        f"{setting_name(alias, 'username')} (the reference project reads GMAIL_USER and "
        "GMAIL_APP_PASSWORD). "
        "The account's own password is refused with 534 or 535."
    )
    problem = ""
    if not info.username:
        problem = "has no username (the Gmail address it signs in as)"
    elif not password:
        problem = "has no password"
    elif not (len(password) == APP_PASSWORD_LENGTH and password.isascii() and password.isalpha()):
        problem = "has a password that is not a 16-letter App Password (after removing spaces)"
    messages: list[checks.CheckMessage] = []
    if problem:
        messages.append(
            checks.Error(f"Gmail mailer {alias!r} {problem}.", hint=hint, id="mailops.E005")
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
            f"Gmail mailer {alias!r} sends From {address!r} ({source}) but signs in as "
            f"{info.username!r}: Gmail rewrites the From header to the signed-in account "
            'unless that address is a verified "Send mail as" alias.',
            hint=f"Set {source} to {info.username!r} (MAILOPS['FROM_EMAILS'][{alias!r}] wins "
            "over DEFAULT_FROM_EMAIL; ?from= on a mailer URL sets it), or add "
            f"{address!r} under Gmail settings → Accounts → Send mail as. "
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
            f"Mailer {info.alias!r} ({info.host}) sends from {address or '(no address)'!r}, "
            "whose domain is not fully qualified: relays that check the sender "
            "(Postfix's reject_non_fqdn_sender, most providers) refuse every message.",
            hint=f"Set {source} to an address at your own domain, e.g. ops@example.com. "
            + SILENCE.format(id="mailops.W012"),
            id="mailops.W012",
        )
    ]
