"""``manage.py mailbounces``: read bounces, delay notices and complaints from the mailbox."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.bounces.results import AUTO_REPLY_LINE, UNREADABLE_LINE, MailboxRun, ReportLine
from mailops.bounces.run import EXIT_FAILED, EXIT_USAGE, UsageError, read_mailboxes
from mailops.management.migrations_check import require_mailops_migrated


class Command(BaseCommand):
    help = (
        "Read the new messages in each mailer's mailbox (MAILBOX_URL, MAILOPS['MAILBOXES']) "
        "for bounces, delay notices and complaints, and record them in the mail log. "
        "Read-only: nothing in the mailbox is flagged, moved or deleted unless --move-to "
        "is given. Exit status: 0 when every mailbox was read and every report understood, "
        "1 when a mailbox could not be read or a message not understood (it is listed and "
        "kept as an unmatched report), 2 for usage errors."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--using",
            metavar="ALIAS",
            help="The mailer whose mailbox to read (default: MAILOPS DEFAULT_MAILER).",
        )
        group.add_argument(
            "--all-mailers",
            action="store_true",
            help="Read the mailbox of every mailer that has one (each account once).",
        )
        parser.add_argument(
            "--since",
            metavar="DATE",
            help="Read every message from this day on (YYYY-MM-DD), not only those not read yet.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what the reports would change; write nothing, move nothing.",
        )
        parser.add_argument(
            "--move-to",
            metavar="FOLDER",
            help="Move each bounce and complaint read into this folder (it must exist).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the outcome as JSON (shape in the docs)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_mailops_migrated()
        since = _since(options["since"])
        try:
            runs = read_mailboxes(
                using=options["using"],
                all_mailers=options["all_mailers"],
                since=since,
                dry_run=options["dry_run"],
                move_to=options["move_to"],
            )
        except (UsageError, ImproperlyConfigured) as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        if options["json"]:
            payload = {"ok": all(run.ok for run in runs), "mailboxes": [r.as_dict() for r in runs]}
            self.stdout.write(json.dumps(payload, indent=2))
        elif options["verbosity"] >= 1:
            for run in runs:
                self._report(run, verbosity=options["verbosity"])
        failed = [run for run in runs if not run.ok]
        if failed:
            first = failed[0]
            raise CommandError(
                _("%(mailbox)s: %(reason)s.") % {"mailbox": first.mailbox, "reason": first.failure},
                returncode=EXIT_FAILED,
            )

    def _report(self, run: MailboxRun, *, verbosity: int) -> None:
        prefix = _("[dry run]") + " " if run.dry_run else ""
        for line in run.lines:
            if line.kind == AUTO_REPLY_LINE and verbosity < 2:
                continue
            style = self.style.WARNING if line.kind == UNREADABLE_LINE else self.style.SUCCESS
            self.stdout.write(style(prefix + _line_text(line)))
        reports = sum(
            1 for line in run.lines if line.kind not in (AUTO_REPLY_LINE, UNREADABLE_LINE)
        )
        changed = sum(1 for line in run.lines if line.changed)
        counts = [
            ngettext("%(count)d new message", "%(count)d new messages", run.messages),
            ngettext("%(count)d report", "%(count)d reports", reports),
            ngettext("%(count)d entry changed", "%(count)d entries changed", changed),
        ]
        numbers = [run.messages, reports, changed]
        if run.moved:
            counts.append(ngettext("%(count)d moved", "%(count)d moved", run.moved))
            numbers.append(run.moved)
        summary = ", ".join(text % {"count": n} for text, n in zip(counts, numbers, strict=True))
        self.stdout.write(
            prefix + _("%(mailbox)s: %(counts)s.") % {"mailbox": run.mailbox, "counts": summary}
        )


def _line_text(line: ReportLine) -> str:
    where = f"{line.folder} #{line.uid}"
    if line.kind in (AUTO_REPLY_LINE, UNREADABLE_LINE):
        return f"{line.kind:<10}  {where}: {line.note}"
    code = f" {line.dsn_status}" if line.dsn_status else ""
    entry = (
        " -> "
        + _("entry %(id)s (%(status)s, by %(match)s)")
        % {"id": line.log_id, "status": line.status, "match": line.matched_by}
        if line.log_id
        else ""
    )
    note = f"; {line.note}" if line.note else ""
    return f"{line.kind:<10}  {line.recipient}{code}{entry}{note}  [{where}]"


def _since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            _("--since %(value)r is not a date; write it as YYYY-MM-DD.") % {"value": value},
            returncode=EXIT_USAGE,
        ) from None
