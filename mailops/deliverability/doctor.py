"""Run the deliverability checks for mailers: the one entry point for the command and the admin."""

from __future__ import annotations

import re
from email.utils import parseaddr

import idna
from django.utils.translation import gettext as _

from mailops.conf import from_email_for, get_setting
from mailops.deliverability.dkim import check_dkim
from mailops.deliverability.dmarc import check_dmarc
from mailops.deliverability.findings import MailerReport
from mailops.deliverability.resolver import (
    DNSUnavailable,
    DomainResolver,
    NoSuchDomain,
    build_resolver,
)
from mailops.deliverability.spf_check import check_spf, is_gmail
from mailops.exceptions import UnknownMailer
from mailops.mailers.info import MailerInfo, MailerKind, mailer_info
from mailops.mailers.registry import mailer_aliases

# One label of a host name in ASCII (RFC 1123 §2.1, "LDH"): what IDNA produces.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Longer input cannot encode to a 253-character name; refused before IDNA works on it.
_MAX_INPUT = 1024


def normalize_domain(domain: str) -> str | None:
    """``domain`` in lower-case ASCII, or ``None`` when it cannot be a mail domain.

    International names are encoded with IDNA 2008 and the UTS #46 mapping
    (``Bücher.example`` -> ``xn--bcher-kva.example``); every label must then
    be letters, digits and inner hyphens, at least two labels, the last not
    all digits (an IP address is not a domain). Anything else (``<``, ``$``,
    quotes, spaces, control characters, ``_``) is refused before any DNS
    query is made for it.
    """
    name = domain.removesuffix(".")
    if not name or len(name) > _MAX_INPUT:
        return None
    try:
        ascii_domain = idna.encode(name, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or labels[-1].isdigit():
        return None
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_domain


def diagnose_mailers(
    aliases: list[str], *, domain: str | None = None, resolver: DomainResolver | None = None
) -> list[MailerReport]:
    """A report per alias; ``domain`` replaces each mailer's From domain when given.

    Raises :class:`UnknownMailer` for an alias MAILERS does not define.
    DNS failures never raise: they are findings.
    """
    unknown = [alias for alias in aliases if alias not in mailer_aliases()]
    if unknown:
        raise UnknownMailer(unknown[0], mailer_aliases())
    reports = []
    for alias in aliases:
        reports.append(diagnose_mailer(alias, domain=domain, resolver=resolver))
    return reports


def diagnose_mailer(
    alias: str, *, domain: str | None = None, resolver: DomainResolver | None = None
) -> MailerReport:
    """Check the DNS of ``alias``' From domain (or ``domain``) for what this mailer needs."""
    info = mailer_info(alias)
    from_email = from_email_for(alias)
    address = parseaddr(from_email)[1]
    local, _at, from_domain = address.rpartition("@")
    checked = normalize_domain(domain if domain is not None else from_domain)
    report = MailerReport(alias=alias, from_email=address or from_email, domain=checked or "")
    _check_gmail_sender(report, info=info, address=address)
    if checked is None or (domain is None and not local):
        report.add(
            "mailops.D001",
            _("Mailer %(alias)r sends from %(from_email)r, which has no usable domain.")
            % {"alias": alias, "from_email": from_email},
            _(
                "Set the From address with ?from= on the mailer URL, MAILOPS['FROM_EMAILS'] "
                "or DEFAULT_FROM_EMAIL, e.g. noreply@example.com."
            ),
        )
        return report
    if info.kind not in (MailerKind.SMTP, MailerKind.PROVIDER):
        report.add(
            "mailops.D004",
            _(
                "Mailer %(alias)r (%(mailer)s) does not deliver to real inboxes; only the "
                "DNS of %(domain)s was checked."
            )
            % {"alias": alias, "mailer": info.describe(), "domain": checked},
            _("Nothing to fix for this mailer; check the mailer that sends real mail."),
        )
    try:
        resolver = resolver or build_resolver()
        _check_dns(
            report, info=info, sender=f"{local or 'postmaster'}@{checked}", resolver=resolver
        )
    except NoSuchDomain:
        report.add(
            "mailops.D003",
            _("The domain %(domain)s does not exist in DNS (NXDOMAIN).") % {"domain": checked},
            _(
                "Check the spelling of the From address; a new domain must be registered and "
                "its DNS published before mail from it can be delivered."
            ),
        )
    except DNSUnavailable as error:
        report.add(
            "mailops.D002",
            _("Could not check the DNS of %(domain)s: %(error)s. Nothing after this was checked.")
            % {"domain": checked, "error": error},
            _(
                "Try again; if it persists, check MAILOPS_DNS_NAMESERVERS / the machine's "
                "resolver (MAILOPS['DNS_TIMEOUT'] sets the per-query time limit)."
            ),
        )
    if resolver is not None:
        report.queries = resolver.queries
    return report


def _check_dns(
    report: MailerReport, *, info: MailerInfo, sender: str, resolver: DomainResolver
) -> None:
    domain = report.domain
    if not resolver.mx(domain):
        report.add(
            "mailops.D010",
            _("%(domain)s has no MX record: replies and bounces to it go nowhere.")
            % {"domain": domain},
            _(
                "Publish an MX record for %(domain)s pointing at a mailbox host, or send from a "
                "domain that receives mail."
            )
            % {"domain": domain},
        )
    delivers = info.kind in (MailerKind.SMTP, MailerKind.PROVIDER)
    spf_aligned = check_spf(report, info=info, sender=sender, resolver=resolver) and delivers
    selectors = list(get_setting("DKIM_SELECTORS").get(report.alias, []))
    dkim_usable = check_dkim(report, selectors=selectors, resolver=resolver)
    check_dmarc(report, resolver=resolver, spf_aligned=spf_aligned, dkim_usable=dkim_usable)


def _check_gmail_sender(report: MailerReport, *, info: MailerInfo, address: str) -> None:
    if not is_gmail(info) or not info.username:
        return
    if address.lower() != info.username.lower():
        report.add(
            "mailops.D060",
            _(
                "Mailer %(alias)r signs in to Gmail as %(username)s but sends From "
                "%(address)s: Gmail rewrites the From header to %(username)s."
            )
            % {"alias": report.alias, "username": info.username, "address": address or _("(none)")},
            _(
                "Send from %(username)s, or add %(address)s as a "
                '"Send mail as" alias in Gmail settings (Accounts > Send mail as) and verify it.'
            )
            % {"username": info.username, "address": address or _("the address")},
        )
