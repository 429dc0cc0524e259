"""``manage.py sendtestmail``: send a test mail, log every outcome, exit honestly."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
from time import sleep
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.arrival.command import run_verify
from mailops.conf import get_setting, validate_settings
from mailops.mailers.connection import CheckOutcome, CheckResult, verify_connections
from mailops.management.migrations_check import require_mailops_migrated
from mailops.management.progress_meter import ProgressMeter, meter_for
from mailops.management.summary_json import (
    EXIT_FAILED,
    EXIT_USAGE,
    summary_as_json,
    summary_error,
)
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import Recipient, from_addresses, from_user_lookups, staff_recipients
from mailops.sending.progress import BatchProgress, batch_progress
from mailops.services import SendSummary, plan_delivery, resolve_mailer, send_test_mail

# Ctrl-C while waiting for the worker (the shell's code for SIGINT).
EXIT_INTERRUPTED = 130
# --wait: how often to look at the batch while the worker sends it.
WAIT_POLL_SECONDS = 1.0

# Options that only make sense when sending (refused with --check).
SEND_ONLY = {
    "users": "--user",
    "staff": "--staff",
    "subject": "--subject",
    "message": "--message",
    "dry_run": "--dry-run",
    "queue": "--async",
    "wait": "--wait",
}


class Command(BaseCommand):
    help = (
        "Send a test mail to addresses and/or users through one configured mailer, "
        "logging each outcome in the mail log. Exit status: 0 when every message was "
        "accepted, 1 when any failed, 2 for usage errors (nothing is sent). With --check, "
        "verify the mailer (every mailer with --all-mailers) without sending: 1 when any "
        "check failed, else 0 (a mailer that cannot be checked is reported as unverified, "
        "not as failed)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("emails", nargs="*", metavar="EMAIL", help="Recipient addresses.")
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            dest="users",
            metavar="USERNAME_OR_EMAIL",
            help="An existing user to mail (repeatable); the log row links to the user.",
        )
        parser.add_argument(
            "--staff", action="store_true", help="Mail every active staff user with an address."
        )
        parser.add_argument("--using", metavar="ALIAS", help="The MAILERS alias to send through.")
        parser.add_argument("--subject", help="Subject line (default: a descriptive one).")
        parser.add_argument("--message", help="Message body (default: site, mailer and time).")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Validate and show what would be sent; send and log nothing.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print a machine-readable result instead."
        )
        parser.add_argument(
            "--ignore-suppression",
            action="store_true",
            help="Send to addresses on the suppression list too (they are rejected otherwise).",
        )
        parser.add_argument(
            "--async",
            action="store_true",
            dest="queue",
            help="Queue the messages for the task worker and return at once (batches above "
            "MAILOPS['ASYNC_THRESHOLD'] are queued anyway when a worker is configured).",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="If the batch was queued for the task worker, wait until every message "
            "has an outcome (retries included), showing progress on stderr; then report "
            "and exit as for a send without a worker.",
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Send nothing: connect, EHLO, STARTTLS and AUTH as configured, then QUIT "
            "(SMTP), or make one read-only authenticated API call (anymail providers), "
            "and report per mailer (logged in the mail log as a connection check).",
        )
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Prove arrival: send (to the mailer's verify mailbox when no EMAIL is given), "
            "then read the mailbox back over IMAP; exit 0 only if it arrived in the inbox "
            "(with the receiving server's own verdicts, when there are any).",
        )
        parser.add_argument(
            "--verify-timeout",
            type=float,
            metavar="SECONDS",
            help="With --verify: the deadline for reading the mailbox back, IMAP sessions "
            "included, however slow the server (default MAILOPS['VERIFY_TIMEOUT'], 120).",
        )
        parser.add_argument(
            "--all-mailers",
            action="store_true",
            help="With --check: check every configured mailer instead of one.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_mailops_migrated()
        try:
            validate_settings()
        except ImproperlyConfigured as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        if options["check"] or options["all_mailers"]:
            self._check(options)
            return
        if options["verify"] or options["verify_timeout"] is not None:
            run_verify(self, options)
            return
        recipients = self._recipients(options)
        meter = self._meter(options)
        # Long inline sends show progress; short ones would only flicker.
        long_run = sum(1 for r in recipients if r.valid) > get_setting("ASYNC_THRESHOLD")
        # The console mailer writes to sys.stdout; keep JSON output parseable.
        redirect = (
            contextlib.redirect_stdout(sys.stderr) if options["json"] else contextlib.nullcontext()
        )
        try:
            with redirect:
                if not options["dry_run"] and not options["json"]:
                    self._notice(recipients, options)
                summary = send_test_mail(
                    recipients,
                    using=options["using"],
                    trigger=MailTrigger.COMMAND,
                    triggered_by_name=_os_user(),
                    subject=options["subject"],
                    body=options["message"],
                    abort_on_rejected=True,
                    dry_run=options["dry_run"],
                    queue=options["queue"],
                    progress=meter.show if meter is not None and long_run else None,
                    ignore_suppression=options["ignore_suppression"],
                )
        except ImproperlyConfigured as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        except ValueError as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None

        # Nothing would ever finish the batch while the worker cannot be reached.
        waited = summary.handed_to_worker and options["wait"] and not summary.worker_error
        if waited:
            self._wait(summary, meter)
        elif meter is not None and long_run and not summary.handed_to_worker and summary.batch_id:
            meter.finish(batch_progress(summary.batch_id))

        if options["json"]:
            self.stdout.write(json.dumps(summary_as_json(summary), indent=2))
        else:
            self._report(summary, options["verbosity"], outcomes_known=waited)
        failure = summary_error(summary)
        if failure is not None:
            raise failure

    def _meter(self, options: dict[str, Any]) -> ProgressMeter | None:
        """The progress line on stderr, unless the output must stay quiet or parseable."""
        if options["verbosity"] == 0 or options["json"] or options["dry_run"]:
            return None
        return meter_for(self)

    def _wait(self, summary: SendSummary, meter: ProgressMeter | None) -> None:
        """Follow the queued batch until no row is queued or sending: its outcomes are final."""
        assert summary.batch_id is not None
        progress: BatchProgress | None = None
        try:
            while True:
                progress = batch_progress(summary.batch_id)
                if progress is None or progress.finished:
                    break
                if meter is not None:
                    meter.show(progress)
                sleep(WAIT_POLL_SECONDS)
        except KeyboardInterrupt:
            if meter is not None:
                meter.finish(None)
            raise CommandError(
                _(
                    "Stopped waiting. The worker goes on with batch %(batch)s; "
                    "follow it in the mail log."
                )
                % {"batch": summary.batch_id},
                returncode=EXIT_INTERRUPTED,
            ) from None
        if meter is not None:
            meter.finish(progress)
        # The summary counted the rows as queued; now they have the worker's outcomes.
        summary.counts = summary.logs().status_counts()

    def _check(self, options: dict[str, Any]) -> None:
        if not options["check"]:
            raise CommandError(_("--all-mailers needs --check."), returncode=EXIT_USAGE)
        sending = [flag for name, flag in SEND_ONLY.items() if options[name]]
        if options["emails"]:
            sending.insert(0, "EMAIL")
        if sending:
            raise CommandError(
                _("--check sends nothing; drop %(options)s.") % {"options": ", ".join(sending)},
                returncode=EXIT_USAGE,
            )
        if options["all_mailers"] and options["using"]:
            raise CommandError(
                _("Use either --using ALIAS or --all-mailers."), returncode=EXIT_USAGE
            )
        try:
            aliases = None if options["all_mailers"] else [resolve_mailer(options["using"])]
        except ImproperlyConfigured as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        results = verify_connections(aliases)
        if not results:
            raise CommandError(_("MAILERS defines no mailer to check."), returncode=EXIT_USAGE)
        if options["json"]:
            payload = {
                # Same as the exit status: no check failed.
                "ok": not any(r.failed for r in results),
                "mailers": [r.as_dict() for r in results],
            }
            self.stdout.write(json.dumps(payload, indent=2))
        else:
            for result in results:
                self._check_line(result, options["verbosity"])
        failed = [r.alias for r in results if r.failed]
        if failed:
            raise CommandError(
                ngettext(
                    "%(failed)d of %(count)d mailer check did not pass: %(aliases)s.",
                    "%(failed)d of %(count)d mailer checks did not pass: %(aliases)s.",
                    len(results),
                )
                % {"failed": len(failed), "count": len(results), "aliases": ", ".join(failed)},
                returncode=EXIT_FAILED,
            )

    def _check_line(self, result: CheckResult, verbosity: int) -> None:
        if result.ok:
            label, style = _("ok"), self.style.SUCCESS
        elif result.outcome == CheckOutcome.UNSUPPORTED:
            label, style = _("unverified"), self.style.WARNING
        elif result.outcome == CheckOutcome.LOCAL:
            # Nothing was checked, and nothing is wrong: not green, not red.
            label, style = _("local"), self.style.NOTICE
        else:
            label, style = _("FAILED"), self.style.ERROR
        if verbosity >= 1 or result.outcome in (CheckOutcome.FAILED, CheckOutcome.UNSUPPORTED):
            self.stdout.write(style(f"{label:<10}  {result.alias}: {result.summary()}"))
            for warning in result.warnings:
                line = _("warning: %(warning)s") % {"warning": warning}
                self.stdout.write(self.style.WARNING(f"{'':<10}  {line}"))

    def _recipients(self, options: dict[str, Any]) -> list[Recipient]:
        recipients = from_addresses(options["emails"]) + from_user_lookups(options["users"])
        if options["staff"]:
            try:
                staff = list(staff_recipients())
            except ImproperlyConfigured as error:
                raise CommandError(f"--staff: {error}", returncode=EXIT_USAGE) from None
            if not staff:
                raise CommandError(
                    _("--staff: no active staff user has an email address."),
                    returncode=EXIT_USAGE,
                )
            recipients += staff
        if not recipients:
            raise CommandError(
                _("Name at least one recipient: an EMAIL, --user or --staff."),
                returncode=EXIT_USAGE,
            )
        return recipients

    def _notice(self, recipients: list[Recipient], options: dict[str, Any]) -> None:
        """Say up front if the batch is queued, will block, or exceeds a daily quota."""
        count = sum(1 for recipient in recipients if recipient.valid)
        notice = plan_delivery(count, using=options["using"], queue=options["queue"]).notice()
        if notice:
            self.stdout.write(self.style.WARNING(notice))

    def _report(self, summary: SendSummary, verbosity: int, *, outcomes_known: bool) -> None:
        if verbosity >= 1:
            for recipient in summary.invalid:
                label = recipient.address or _("(no address)")
                self.stdout.write(
                    self.style.ERROR(
                        _("rejected  %(address)s: %(error)s")
                        % {"address": label, "error": recipient.error}
                    )
                )
            if summary.dry_run:
                for recipient in summary.planned:
                    self.stdout.write(_("would send  %(address)s") % {"address": recipient.address})
            rows = summary.logs().exclude(status=MailStatus.REJECTED)
            # Rows handed to a worker have no outcome yet, unless we waited for it.
            for log in rows if outcomes_known or not summary.handed_to_worker else rows.none():
                self.stdout.write(self._line(log.status, log.recipient, log.error))
        if verbosity >= 1 or not summary.ok:
            self.stdout.write(self._summary_line(summary))

    def _line(self, status: str, recipient: str, error: str) -> str:
        # The status is the row's status value, as in --json and in exports: scripts
        # read this column, so it is not translated (the sentences around it are).
        text = f"{status:<8}  {recipient}" + (f": {error}" if error else "")
        if status == MailStatus.FAILED:
            return self.style.ERROR(text)
        if status == MailStatus.QUEUED:
            return self.style.WARNING(text)
        return self.style.SUCCESS(text)

    def _summary_line(self, summary: SendSummary) -> str:
        if summary.dry_run:
            return _(
                "Dry run via mailer %(mailer)r: %(planned)d would be sent, "
                "%(rejected)d rejected. Nothing was sent or logged."
            ) % {
                "mailer": summary.mailer,
                "planned": len(summary.planned),
                "rejected": summary.rejected,
            }
        parts = [
            _("%(count)d sent") % {"count": summary.sent},
            _("%(count)d failed") % {"count": summary.failed},
            _("%(count)d rejected") % {"count": summary.rejected},
        ]
        if summary.queued:
            parts.append(_("%(count)d queued") % {"count": summary.queued})
        return _("%(counts)s via mailer %(mailer)r (batch %(batch)s).") % {
            "counts": ", ".join(parts),
            "mailer": summary.mailer,
            "batch": summary.batch_id,
        }


def _os_user() -> str:
    """Who runs the command, as the operating system knows them ("" if it cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No login name in the environment and no passwd entry for the uid (containers).
        return ""
