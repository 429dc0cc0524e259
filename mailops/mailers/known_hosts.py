"""Well-known SMTP hosts, to catch a mistyped one (``mailops.W001``).

Split from :mod:`mailops.mailers.config_checks` (which re-exports ``suggest_host``)
to keep that module readable: this is data and a lookup, no check.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


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
