"""``manage.py maildoctor``: check each mailer's From domain in DNS (MX, SPF, DMARC, DKIM)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.conf import get_setting
from mailops.deliverability.doctor import diagnose_mailers, normalize_domain
from mailops.deliverability.findings import Level, MailerReport
from mailops.deliverability.nameservers import parse_nameservers
from mailops.exceptions import UnknownMailer
from mailops.mailers.info import configured_mailers
from mailops.mailers.registry import mailer_aliases

EXIT_ERRORS = 1
EXIT_USAGE = 2

STYLES = {Level.ERROR: "ERROR", Level.WARNING: "WARNING", Level.INFO: "NOTICE"}


class Command(BaseCommand):
    help = (
        "Check the DNS of each mailer's From domain: MX, SPF (one valid record that "
        "authorises the mailer, within 10 lookups), DMARC, DKIM selectors, and Gmail's "
        "From rewriting. Exit status: 0 when no finding is an error, 1 when one is "
        "(a DNS timeout counts: it is 'could not check', not a pass), 2 for usage errors."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--using",
            metavar="ALIAS",
            help="The mailer to check (default: MAILOPS DEFAULT_MAILER).",
        )
        group.add_argument(
            "--all-mailers",
            action="store_true",
            help="Check every mailer that delivers real mail (SMTP or a provider).",
        )
        parser.add_argument(
            "--domain", help="Check this domain instead of the From address's domain."
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the findings as JSON (the shape is in the commands reference).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = self._aliases(options)
        domain = options["domain"]
        if domain is not None and normalize_domain(domain) is None:
            raise CommandError(
                _("--domain %(domain)s is not a domain name.") % {"domain": _quoted(domain)},
                returncode=EXIT_USAGE,
            )
        try:
            parse_nameservers(get_setting("DNS_NAMESERVERS"))
        except (TypeError, ValueError) as error:
            raise CommandError(
                _("MAILOPS['DNS_NAMESERVERS'] is not valid: %(error)s") % {"error": error},
                returncode=EXIT_USAGE,
            ) from None
        try:
            reports = diagnose_mailers(aliases, domain=domain)
        except UnknownMailer as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(reports), indent=2))
        else:
            self._print(reports, verbosity=options["verbosity"])
        errors = sum(report.count(Level.ERROR) for report in reports)
        if errors:
            raise CommandError(
                ngettext(
                    "%(count)d error in the mail DNS; see the findings above.",
                    "%(count)d errors in the mail DNS; see the findings above.",
                    errors,
                )
                % {"count": errors},
                returncode=EXIT_ERRORS,
            )

    def _aliases(self, options: dict[str, Any]) -> list[str]:
        if options["all_mailers"]:
            aliases = [info.alias for info in configured_mailers() if info.delivers_real_mail]
            if not aliases:
                raise CommandError(
                    _(
                        "No mailer delivers real mail (all are console, file or local); "
                        "name one with --using to check its From domain anyway."
                    ),
                    returncode=EXIT_USAGE,
                )
            return aliases
        alias = options["using"] or get_setting("DEFAULT_MAILER")
        if alias not in mailer_aliases():
            raise CommandError(
                _("There is no mailer %(alias)r in MAILERS.") % {"alias": alias},
                returncode=EXIT_USAGE,
            )
        return [alias]

    def _print(self, reports: list[MailerReport], *, verbosity: int) -> None:
        for report in reports:
            values = {
                "alias": report.alias,
                "from_email": report.from_email or _("(none)"),
                "domain": report.domain,
            }
            heading = (
                _("%(alias)s: From %(from_email)s, domain %(domain)s") % values
                if report.domain
                else _("%(alias)s: From %(from_email)s") % values
            )
            self.stdout.write(self.style.MIGRATE_HEADING(_printable(heading)))
            shown = [
                finding
                for finding in report.findings
                if verbosity > 0 or finding.level != Level.INFO
            ]
            if not report.findings:
                self.stdout.write(self.style.SUCCESS("  " + _("No problems found.")))
            for finding in shown:
                style = getattr(self.style, STYLES[finding.level])
                # The level is printed as an identifier, like Django's own check output.
                self.stdout.write(
                    style(f"  {finding.level.upper()} {finding.id}: {_printable(finding.message)}")
                )
                self.stdout.write(
                    "      " + _("hint: %(hint)s") % {"hint": _printable(finding.hint)}
                )
            if verbosity > 1:
                queries = ngettext(
                    "(%(count)d DNS query)", "(%(count)d DNS queries)", report.queries
                ) % {"count": report.queries}
                self.stdout.write(f"  {queries}")


def _printable(text: str) -> str:
    """``text`` with every control or invisible character escaped (``\\x1b``, ``\\u202e``).

    What reaches the terminal cannot move the cursor, recolour it or reorder
    text, whatever a DNS record, a setting or an argument held.
    """
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _quoted(value: str, limit: int = 80) -> str:
    """``value`` quoted and escaped like :func:`repr`, cut to ``limit`` characters."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def _as_json(reports: list[MailerReport]) -> dict[str, Any]:
    return {
        "mailers": [report.as_dict() for report in reports],
        "errors": sum(report.count(Level.ERROR) for report in reports),
        "warnings": sum(report.count(Level.WARNING) for report in reports),
    }
