"""DMARC: is there a policy for the From domain, what does it say, can mail align with it?"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.utils.translation import gettext as _
from publicsuffixlist import PublicSuffixList

from mailops.deliverability.dkim import parse_tags
from mailops.deliverability.findings import MailerReport
from mailops.deliverability.resolver import DomainResolver

POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcPolicy:
    # The domain whose _dmarc record applies (the From domain or its organisational domain).
    found_at: str
    policy: str


@functools.cache
def public_suffix_list() -> PublicSuffixList:
    """The Public Suffix List the ``publicsuffixlist`` package ships, parsed once.

    Unknown top-level domains count as public suffixes (the list's own ``*``
    rule), so ``org.test`` is the organisational domain of ``sub.org.test``.
    """
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """The DMARC organisational domain (RFC 7489 §3.2) of ``domain`` (lower-case ASCII).

    One label more than the longest public suffix, from the Public Suffix
    List: ``mail.example.co.uk`` -> ``example.co.uk``, ``a.example.com.au``
    -> ``example.com.au``, ``mail.example.com`` -> ``example.com``. A domain
    that is itself a public suffix is its own.
    """
    domain = domain.lower().rstrip(".")
    return public_suffix_list().privatesuffix(domain) or domain


def check_dmarc(
    report: MailerReport,
    *,
    resolver: DomainResolver,
    spf_aligned: bool,
    dkim_usable: bool,
) -> DmarcPolicy | None:
    """Add DMARC findings to ``report``; the policy that applies, if any.

    ``spf_aligned``: SPF passes for this mailer with the From domain as
    envelope sender; ``dkim_usable``: a configured selector on the From domain
    has a usable key. DMARC passes only through one of the two.
    """
    domain = report.domain
    found_at, records = domain, _dmarc_records(resolver, domain)
    inherited = False
    org = organizational_domain(domain)
    if not records and org != domain:
        found_at, records, inherited = org, _dmarc_records(resolver, org), True
    if not records:
        asked = (
            _("_dmarc.%(domain)s nor _dmarc.%(org)s") % {"domain": domain, "org": org}
            if org != domain
            else f"_dmarc.{domain}"
        )
        report.add(
            "mailops.D040",
            _("%(domain)s has no DMARC record (%(asked)s).") % {"domain": domain, "asked": asked},
            (
                _(
                    "Gmail and Yahoo expect one from bulk senders. Start with a TXT record at "
                    "_dmarc.%(org)s: v=DMARC1; p=none; rua=mailto:dmarc@%(org)s (it covers "
                    "%(domain)s and the other subdomains of %(org)s)"
                )
                if org != domain
                else _(
                    "Gmail and Yahoo expect one from bulk senders. Start with a TXT record at "
                    "_dmarc.%(org)s: v=DMARC1; p=none; rua=mailto:dmarc@%(org)s"
                )
            )
            % {"domain": domain, "org": org},
        )
        return None
    if len(records) > 1:
        report.add(
            "mailops.D041",
            _("_dmarc.%(domain)s has %(count)d DMARC records; receivers ignore them all.")
            % {"domain": found_at, "count": len(records)},
            _("Keep exactly one TXT record starting with v=DMARC1."),
        )
        return None
    tags = parse_tags(records[0])
    policy = tags.get("sp", tags.get("p", "")) if inherited else tags.get("p", "")
    if not records[0].replace(" ", "").startswith("v=DMARC1;") or policy.lower() not in POLICIES:
        report.add(
            "mailops.D041",
            _("The DMARC record at _dmarc.%(domain)s is not valid: %(record)r.")
            % {"domain": found_at, "record": records[0][:120]},
            _("It must start with v=DMARC1; followed by p=none, p=quarantine or p=reject."),
        )
        return None
    policy = policy.lower()
    if policy == "none":
        report.add(
            "mailops.D042",
            _("DMARC for %(domain)s is p=none: failures are reported, not acted on.")
            % {"domain": domain},
            _(
                "Once the reports (rua=) show your mail passing, move to p=quarantine, then "
                "p=reject, so that forged mail from your domain is refused."
            ),
        )
    if not spf_aligned and not dkim_usable:
        report.add(
            "mailops.D043",
            _(
                "DMARC for %(domain)s passes only if SPF or DKIM aligns with %(domain)s, and "
                "neither was shown to for this mailer."
            )
            % {"domain": domain},
            _(
                "Configure DKIM signing for this domain at your mail provider and give the "
                "selector to mailops (?dkim_selector=), or make SPF authorise this mailer."
            ),
        )
    return DmarcPolicy(found_at=found_at, policy=policy)


def _dmarc_records(resolver: DomainResolver, domain: str) -> list[str]:
    texts = resolver.txt(f"_dmarc.{domain}")
    return [text for text in texts if text.replace(" ", "").upper().startswith("V=DMARC1")]
