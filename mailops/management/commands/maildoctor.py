"""``manage.py maildoctor``: check each mailer's From domain in DNS (MX, SPF, DMARC, DKIM)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

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
                f"--domain {_quoted(domain)} is not a domain name.", returncode=EXIT_USAGE
            )
        try:
            parse_nameservers(get_setting("DNS_NAMESERVERS"))
        except (TypeError, ValueError) as error:
            raise CommandError(
                f"MAILOPS['DNS_NAMESERVERS'] is not valid: {error}", returncode=EXIT_USAGE
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
                f"{errors} error(s) in the mail DNS; see the findings above.",
                returncode=EXIT_ERRORS,
            )

    def _aliases(self, options: dict[str, Any]) -> list[str]:
        if options["all_mailers"]:
            aliases = [info.alias for info in configured_mailers() if info.delivers_real_mail]
            if not aliases:
                raise CommandError(
                    "No mailer delivers real mail (all are console, file or local); "
                    "name one with --using to check its From domain anyway.",
                    returncode=EXIT_USAGE,
                )
            return aliases
        alias = options["using"] or get_setting("DEFAULT_MAILER")
        if alias not in mailer_aliases():
            raise CommandError(f"There is no mailer {alias!r} in MAILERS.", returncode=EXIT_USAGE)
        return [alias]

    def _print(self, reports: list[MailerReport], *, verbosity: int) -> None:
        for report in reports:
            self.stdout.write(
                self.style.MIGRATE_HEADING(
                    _printable(
                        f"{report.alias}: From {report.from_email or '(none)'}"
                        + (f", domain {report.domain}" if report.domain else "")
                    )
                )
            )
            shown = [
                finding
                for finding in report.findings
                if verbosity > 0 or finding.level != Level.INFO
            ]
            if not report.findings:
                self.stdout.write(self.style.SUCCESS("  No problems found."))
            for finding in shown:
                style = getattr(self.style, STYLES[finding.level])
                self.stdout.write(
                    style(f"  {finding.level.upper()} {finding.id}: {_printable(finding.message)}")
                )
                self.stdout.write(f"      hint: {_printable(finding.hint)}")
            if verbosity > 1:
                self.stdout.write(f"  ({report.queries} DNS queries)")


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
