"""The SPF part of the report: one record, valid, within limits, and covering this mailer."""

from __future__ import annotations

from mailops.deliverability.findings import MailerReport
from mailops.deliverability.resolver import DNSUnavailable, DomainResolver
from mailops.deliverability.spf import spf_records, walk_spf
from mailops.deliverability.spf_relay import evaluate_spf
from mailops.mailers.anymail_providers import backend_path
from mailops.mailers.environ import GMAIL_HOST
from mailops.mailers.info import MailerInfo, MailerKind

# Google Workspace / Gmail: https://support.google.com/a/answer/33786
# ("Set up SPF": v=spf1 include:_spf.google.com ~all).
GMAIL_SPF_INCLUDE = "_spf.google.com"

# The include each provider documents for the sender's SPF record. Checked
# against the providers' pages (offline here, so from their documentation as
# known; re-check when a provider renames its domain, as Sendinblue did):
PROVIDER_SPF_INCLUDES: dict[str, tuple[str, ...]] = {
    # https://docs.aws.amazon.com/ses/latest/dg/send-email-authentication-spf.html
    backend_path("amazon_ses"): ("amazonses.com",),
    # https://documentation.mailgun.com/docs/mailgun/user-manual/domains/domains-verify/
    # (include:mailgun.org; EU-region domains are told include:eu.mailgun.org)
    backend_path("mailgun"): ("mailgun.org", "eu.mailgun.org"),
    # https://www.twilio.com/docs/sendgrid/ui/account-and-settings/spf-records
    backend_path("sendgrid"): ("sendgrid.net",),
    # https://postmarkapp.com/support/article/900-what-is-spf
    backend_path("postmark"): ("spf.mtasv.net",),
    # https://help.brevo.com/hc/en-us/articles/12163873383186 (Authenticate your domain);
    # older Sendinblue instructions used include:spf.sendinblue.com, still served.
    backend_path("brevo"): ("spf.brevo.com", "spf.sendinblue.com"),
}


# Findings that already say why SPF evaluation ends in a permanent error.
SPF_PERMERRORS = frozenset(
    {"mailops.D022", "mailops.D023", "mailops.D024", "mailops.D026", "mailops.D031"}
)


def is_gmail(info: MailerInfo) -> bool:
    return info.kind == MailerKind.SMTP and info.host.lower().rstrip(".") == GMAIL_HOST


def check_spf(
    report: MailerReport, *, info: MailerInfo, sender: str, resolver: DomainResolver
) -> bool:
    """Add SPF findings; ``True`` when SPF passes this mailer with ``sender`` as envelope sender."""
    domain = report.domain
    records = spf_records(resolver.txt(domain))
    if not records:
        report.add(
            "mailops.D020",
            f"{domain} has no SPF record, so receivers cannot tell your mail from forgeries.",
            f"Publish one TXT record at {domain} starting with v=spf1 that lists every "
            "service sending for it, e.g. v=spf1 include:<provider> ~all.",
        )
        return False
    if len(records) > 1:
        report.add(
            "mailops.D021",
            f"{domain} has {len(records)} SPF records; receivers treat that as a permanent "
            "error and SPF fails for every message.",
            "Merge them into one v=spf1 record (all include:/ip4: terms in one line) and "
            "delete the others.",
        )
        return False
    walk = walk_spf(domain, records[0], resolver=resolver)
    for problem in walk.problems:
        report.add(problem.id, problem.message, problem.hint)
    if walk.allows_all:
        report.add(
            "mailops.D027",
            f"The SPF record of {domain} ends in +all: it authorises every server on the internet.",
            "End the record with ~all (or -all once everything passes).",
        )
    broken = bool(walk.problems)
    if is_gmail(info):
        return (
            _require_include(
                report,
                walk.reaches(GMAIL_SPF_INCLUDE),
                "Gmail",
                (GMAIL_SPF_INCLUDE,),
                "mailops.D025",
            )
            and not broken
        )
    if info.kind == MailerKind.PROVIDER:
        includes = PROVIDER_SPF_INCLUDES.get(info.backend)
        if includes is None:
            report.add(
                "mailops.D029",
                f"mailops knows no documented SPF include for {info.esp}; SPF authorisation "
                f"of mailer {info.alias!r} was not checked.",
                f"Compare the SPF record of {domain} with {info.esp}'s domain setup page.",
            )
            return False
        _require_include(
            report,
            any(walk.reaches(name) for name in includes),
            info.esp,
            includes,
            "mailops.D030",
        )
        # The provider's envelope sender is its own bounce domain unless a custom
        # return path is set up: SPF does not align with the From domain by default.
        return False
    if info.kind == MailerKind.SMTP and info.host:
        if info.loopback:
            report.add(
                "mailops.D029",
                f"Mailer {info.alias!r} relays through {info.host} on this machine; the address "
                "it finally sends from is not known here, so SPF was not evaluated for it.",
                f"Make sure the SPF record of {domain} covers the public address of this "
                "machine or of its smart host.",
            )
            return False
        return _check_relay(report, info=info, sender=sender, resolver=resolver) and not broken
    return False


def _require_include(
    report: MailerReport, reached: bool, name: str, includes: tuple[str, ...], finding_id: str
) -> bool:
    if reached:
        return True
    wanted = " or ".join(f"include:{include}" for include in includes)
    hint = f"Add {wanted} to the SPF record of {report.domain} (keep one v=spf1 record)."
    if finding_id == "mailops.D030":
        hint += (
            " This matters when the provider sends with a return path on your domain; "
            "otherwise DMARC relies on DKIM signing by the provider."
        )
    report.add(
        finding_id,
        f"The SPF record of {report.domain} does not authorise {name} ({wanted} is missing).",
        hint,
    )
    return False


def _check_relay(
    report: MailerReport, *, info: MailerInfo, sender: str, resolver: DomainResolver
) -> bool:
    addresses = resolver.addresses(info.host)
    if not addresses:
        report.add(
            "mailops.D029",
            f"The relay host {info.host} of mailer {info.alias!r} has no address in DNS; "
            "SPF was not evaluated for it.",
            "Check the host name in the mailer URL (manage.py sendtestmail --check tests it).",
        )
        return False
    passed = True
    for address in addresses:
        verdict = evaluate_spf(address=address, sender=sender, helo=info.host, resolver=resolver)
        if verdict.result == "pass":
            continue
        passed = False
        if verdict.result == "temperror":
            raise DNSUnavailable(f"SPF evaluation for {address}: {verdict.explanation}")
        where = f"the relay {info.host} ({address})"
        fix = (
            f"Add ip4:/ip6: for {address} (or the relay's documented include:) to the SPF "
            f"record of {report.domain}. If the relay sends from other addresses than this "
            "name resolves to, check with its operator."
        )
        if verdict.result == "fail":
            report.add("mailops.D025", f"SPF of {report.domain} rejects {where}.", fix)
        elif verdict.result in ("softfail", "neutral"):
            report.add(
                "mailops.D028",
                f"SPF of {report.domain} gives {verdict.result} for {where}: not authorised.",
                fix,
            )
        elif verdict.result == "permerror" and not any(
            finding.id in SPF_PERMERRORS for finding in report.findings
        ):
            report.add(
                "mailops.D022",
                f"SPF of {report.domain} cannot be evaluated: {verdict.explanation}.",
                "Fix the SPF record (RFC 7208 section 5).",
            )
    return passed
