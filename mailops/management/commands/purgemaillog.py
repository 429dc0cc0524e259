"""``manage.py purgemaillog``: delete what the retention policy no longer keeps (for cron)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import ProtectedError, RestrictedError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.conf import get_setting, validate_settings
from mailops.exceptions import InvalidSetting
from mailops.management.migrations_check import require_mailops_migrated
from mailops.management.progress_meter import meter_for
from mailops.retention.policy import PURGEABLE_STATUSES
from mailops.retention.purge import PurgeReport, purge_by_policy
from mailops.statuses import MailTrigger

EXIT_FAILED = 1
EXIT_USAGE = 2


@dataclass
class PurgeProgress:
    """The purge's progress line for :class:`~mailops.management.progress_meter.ProgressMeter`."""

    deleted: int = 0
    share: float = 0.0

    @property
    def finished(self) -> bool:
        return self.share >= 1.0

    @property
    def percent(self) -> int:
        return min(100, int(self.share * 100))

    def line(self, width: int = 20) -> str:
        filled = min(width, int(self.share * width))
        bar = "#" * filled + "." * (width - filled)
        return f"[{bar}] {self.percent}% " + _("%(count)d deleted") % {"count": self.deleted}


class Command(BaseCommand):
    help = (
        "Delete mail log rows older than MAILOPS['RETENTION'] keeps them (or --older-than), "
        "clear stored bodies older than MAILOPS['BODY_RETENTION'], and delete unmatched "
        "bounce reports older than MAILOPS['UNMATCHED_BOUNCE_RETENTION'], in short batches. "
        "Never asks: meant for cron. Rows queued, sending or in doubt are never deleted."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="DAYS",
            help="Delete finished rows created before local midnight DAYS days ago, "
            "instead of following MAILOPS['RETENTION'] (0: everything before today).",
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=PURGEABLE_STATUSES,
            help="Only rows with this status (repeatable).",
        )
        parser.add_argument(
            "--trigger",
            action="append",
            choices=MailTrigger.values,
            help="Only rows started this way (repeatable).",
        )
        parser.add_argument(
            "--bodies-only",
            action="store_true",
            help="Keep the rows; only clear stored bodies older than "
            "MAILOPS['BODY_RETENTION'] (or --older-than) days.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the report as JSON (shape in the docs)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["older_than"] is not None and options["older_than"] < 0:
            raise CommandError(_("--older-than must be 0 or more days."), returncode=EXIT_USAGE)
        if options["bodies_only"] and (options["status"] or options["trigger"]):
            raise CommandError(
                _(
                    "--bodies-only clears bodies of every finished row; "
                    "it takes no --status or --trigger."
                ),
                returncode=EXIT_USAGE,
            )
        try:
            validate_settings()
        except InvalidSetting as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        require_mailops_migrated()
        meter = meter_for(self) if options["verbosity"] >= 1 and not options["json"] else None
        state = PurgeProgress()

        def progress(deleted: int, share: float) -> None:
            state.deleted, state.share = deleted, share
            if meter:
                meter.show(state)

        try:
            report = purge_by_policy(
                older_than=options["older_than"],
                statuses=options["status"],
                triggers=options["trigger"],
                bodies_only=options["bodies_only"],
                dry_run=options["dry_run"],
                progress=progress,
            )
        except (ProtectedError, RestrictedError) as error:
            # A model of the project's protects log rows (on_delete=PROTECT):
            # the batches before it are done, this one rolled back.
            raise CommandError(
                _(
                    "Stopped: %(reason)s Change that foreign key to SET_NULL or CASCADE, "
                    "or narrow the purge (--status, --trigger, --older-than)."
                )
                % {"reason": error.args[0]},
                returncode=EXIT_FAILED,
            ) from None
        if meter and state.share:
            meter.finish(state)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self._print(report, options)

    def _print_unmatched(self, report: PurgeReport) -> None:
        count = sum(report.unmatched_bounces.values())
        if report.dry_run:
            line = ngettext(
                "Would delete %(count)d unmatched bounce report.",
                "Would delete %(count)d unmatched bounce reports.",
                count,
            )
        else:
            line = ngettext(
                "Deleted %(count)d unmatched bounce report.",
                "Deleted %(count)d unmatched bounce reports.",
                count,
            )
        self.stdout.write(line % {"count": count})
        for kind, n in sorted(report.unmatched_bounces.items()):
            self.stdout.write(f"  {kind}: {n}")

    def _print(self, report: PurgeReport, options: dict[str, Any]) -> None:
        unmatched_kept = get_setting("UNMATCHED_BOUNCE_RETENTION") is None
        nothing_configured = (
            options["older_than"] is None
            and not get_setting("RETENTION")
            and get_setting("BODY_RETENTION") is None
            and unmatched_kept
        )
        if nothing_configured:
            self.stdout.write(
                _(
                    "No retention is configured (MAILOPS['RETENTION'], "
                    "MAILOPS['BODY_RETENTION'], MAILOPS['UNMATCHED_BOUNCE_RETENTION']) "
                    "and no --older-than given: nothing to purge."
                )
            )
            return
        rows, cleared = report.total, report.bodies_cleared
        if report.dry_run:
            heading = ngettext("Would delete %(count)d row.", "Would delete %(count)d rows.", rows)
            bodies = ngettext(
                "Would clear %(count)d body.", "Would clear %(count)d bodies.", cleared
            )
        else:
            heading = ngettext("Deleted %(count)d row.", "Deleted %(count)d rows.", rows)
            bodies = ngettext("Cleared %(count)d body.", "Cleared %(count)d bodies.", cleared)
        heading, bodies = heading % {"count": rows}, bodies % {"count": cleared}
        self.stdout.write(self.style.SUCCESS(heading))
        for status, count in sorted(report.deleted.items()):
            self.stdout.write(f"  {status}: {count}")
        self.stdout.write(bodies)
        if not unmatched_kept and not options["bodies_only"]:
            self._print_unmatched(report)
        if report.days_closed and options["verbosity"] >= 2:
            self.stdout.write(
                ngettext(
                    "%(days)d day counted into the daily history first.",
                    "%(days)d days counted into the daily history first.",
                    report.days_closed,
                )
                % {"days": report.days_closed}
            )
