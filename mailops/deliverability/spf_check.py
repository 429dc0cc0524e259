"""The SPF part of the report: one record, valid, within limits, and covering this mailer."""

from __future__ import annotations

from django.utils.translation import gettext as _

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
            _("%(domain)s has no SPF record, so receivers cannot tell your mail from forgeries.")
            % {"domain": domain},
            _(
                "Publish one TXT record at %(domain)s starting with v=spf1 that lists every "
                "service sending for it, e.g. v=spf1 include:<provider> ~all."
            )
            % {"domain": domain},
        )
        return False
    if len(records) > 1:
        report.add(
            "mailops.D021",
            _(
                "%(domain)s has %(count)d SPF records; receivers treat that as a permanent "
                "error and SPF fails for every message."
            )
            % {"domain": domain, "count": len(records)},
            _(
                "Merge them into one v=spf1 record (all include:/ip4: terms in one line) and "
                "delete the others."
            ),
        )
        return False
    walk = walk_spf(domain, records[0], resolver=resolver)
    for problem in walk.problems:
        report.add(problem.id, problem.message, problem.hint)
    if walk.allows_all:
        report.add(
            "mailops.D027",
            _(
                "The SPF record of %(domain)s ends in +all: it authorises every server on the "
                "internet."
            )
            % {"domain": domain},
            _("End the record with ~all (or -all once everything passes)."),
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
                _(
                    "mailops knows no documented SPF include for %(provider)s; SPF authorisation "
                    "of mailer %(alias)r was not checked."
                )
                % {"provider": info.esp, "alias": info.alias},
                _(
                    "Compare the SPF record of %(domain)s with the domain setup page of "
                    "%(provider)s."
                )
                % {"domain": domain, "provider": info.esp},
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
                _(
                    "Mailer %(alias)r relays through %(host)s on this machine; the address "
                    "it finally sends from is not known here, so SPF was not evaluated for it."
                )
                % {"alias": info.alias, "host": info.host},
                _(
                    "Make sure the SPF record of %(domain)s covers the public address of this "
                    "machine or of its smart host."
                )
                % {"domain": domain},
            )
            return False
        return _check_relay(report, info=info, sender=sender, resolver=resolver) and not broken
    return False


def _require_include(
    report: MailerReport, reached: bool, name: str, includes: tuple[str, ...], finding_id: str
) -> bool:
    if reached:
        return True
    wanted = _(" or ").join(f"include:{include}" for include in includes)
    hint = _("Add %(wanted)s to the SPF record of %(domain)s (keep one v=spf1 record).") % {
        "wanted": wanted,
        "domain": report.domain,
    }
    if finding_id == "mailops.D030":
        hint += " " + _(
            "This matters when the provider sends with a return path on your domain; "
            "otherwise DMARC relies on DKIM signing by the provider."
        )
    report.add(
        finding_id,
        _("The SPF record of %(domain)s does not authorise %(name)s (%(wanted)s is missing).")
        % {"domain": report.domain, "name": name, "wanted": wanted},
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
            _(
                "The relay host %(host)s of mailer %(alias)r has no address in DNS; "
                "SPF was not evaluated for it."
            )
            % {"host": info.host, "alias": info.alias},
            _("Check the host name in the mailer URL (manage.py sendtestmail --check tests it)."),
        )
        return False
    passed = True
    for address in addresses:
        verdict = evaluate_spf(address=address, sender=sender, helo=info.host, resolver=resolver)
        if verdict.result == "pass":
            continue
        passed = False
        if verdict.result == "temperror":
            raise DNSUnavailable(
                _("SPF evaluation for %(address)s: %(explanation)s")
                % {"address": address, "explanation": verdict.explanation}
            )
        values = {"domain": report.domain, "host": info.host, "address": address}
        fix = (
            _(
                "Add ip4:/ip6: for %(address)s (or the relay's documented include:) to the SPF "
                "record of %(domain)s. If the relay sends from other addresses than this "
                "name resolves to, check with its operator."
            )
            % values
        )
        if verdict.result == "fail":
            report.add(
                "mailops.D025",
                _("SPF of %(domain)s rejects the relay %(host)s (%(address)s).") % values,
                fix,
            )
        elif verdict.result in ("softfail", "neutral"):
            report.add(
                "mailops.D028",
                _(
                    "SPF of %(domain)s gives %(result)s for the relay %(host)s (%(address)s): "
                    "not authorised."
                )
                % {**values, "result": verdict.result},
                fix,
            )
        elif verdict.result == "permerror" and not any(
            finding.id in SPF_PERMERRORS for finding in report.findings
        ):
            report.add(
                "mailops.D022",
                _("SPF of %(domain)s cannot be evaluated: %(explanation)s.")
                % {"domain": report.domain, "explanation": verdict.explanation},
                _("Fix the SPF record (RFC 7208 section 5)."),
            )
    return passed
