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

from mailops.arrival.command import run_verify
from mailops.conf import get_setting, validate_settings
from mailops.mailers.connection import CheckOutcome, CheckResult, verify_connections
from mailops.management.migrations_check import require_mailops_migrated
from mailops.management.progress_meter import ProgressMeter, meter_for
from mailops.models import MailStatus, MailTrigger
from mailops.recipients import Recipient, from_addresses, from_user_lookups, staff_recipients
from mailops.sending.progress import BatchProgress, batch_progress
from mailops.services import SendSummary, plan_delivery, resolve_mailer, send_test_mail

EXIT_FAILED = 1
EXIT_USAGE = 2
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
        "verify the mailer(s) without sending: 1 when any check failed, else 0 (a mailer "
        "that cannot be checked is reported as unverified, not as failed)."
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
            self.stdout.write(json.dumps(_as_json(summary), indent=2))
        else:
            self._report(summary, options["verbosity"], outcomes_known=waited)
        self._exit_status(summary)

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
                f"Stopped waiting. The worker goes on with batch {summary.batch_id}; "
                "follow it in the mail log.",
                returncode=EXIT_INTERRUPTED,
            ) from None
        if meter is not None:
            meter.finish(progress)
        # The summary counted the rows as queued; now they have the worker's outcomes.
        summary.counts = summary.logs().status_counts()

    def _check(self, options: dict[str, Any]) -> None:
        if not options["check"]:
            raise CommandError("--all-mailers needs --check.", returncode=EXIT_USAGE)
        sending = [flag for name, flag in SEND_ONLY.items() if options[name]]
        if options["emails"]:
            sending.insert(0, "EMAIL")
        if sending:
            raise CommandError(
                f"--check sends nothing; drop {', '.join(sending)}.", returncode=EXIT_USAGE
            )
        if options["all_mailers"] and options["using"]:
            raise CommandError("Use either --using ALIAS or --all-mailers.", returncode=EXIT_USAGE)
        try:
            aliases = None if options["all_mailers"] else [resolve_mailer(options["using"])]
        except ImproperlyConfigured as error:
            raise CommandError(str(error), returncode=EXIT_USAGE) from None
        results = verify_connections(aliases)
        if not results:
            raise CommandError("MAILERS defines no mailer to check.", returncode=EXIT_USAGE)
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
                f"{len(failed)} of {len(results)} mailer check(s) did not pass: "
                f"{', '.join(failed)}.",
                returncode=EXIT_FAILED,
            )

    def _check_line(self, result: CheckResult, verbosity: int) -> None:
        if result.ok:
            label, style = "ok", self.style.SUCCESS
        elif result.outcome == CheckOutcome.UNSUPPORTED:
            label, style = "unverified", self.style.WARNING
        elif result.outcome == CheckOutcome.LOCAL:
            # Nothing was checked, and nothing is wrong: not green, not red.
            label, style = "local", self.style.NOTICE
        else:
            label, style = "FAILED", self.style.ERROR
        if verbosity >= 1 or result.outcome in (CheckOutcome.FAILED, CheckOutcome.UNSUPPORTED):
            self.stdout.write(style(f"{label:<10}  {result.alias}: {result.summary()}"))
            for warning in result.warnings:
                self.stdout.write(self.style.WARNING(f"{'':<10}  warning: {warning}"))

    def _recipients(self, options: dict[str, Any]) -> list[Recipient]:
        recipients = from_addresses(options["emails"]) + from_user_lookups(options["users"])
        if options["staff"]:
            try:
                staff = list(staff_recipients())
            except ImproperlyConfigured as error:
                raise CommandError(f"--staff: {error}", returncode=EXIT_USAGE) from None
            if not staff:
                raise CommandError(
                    "--staff: no active staff user has an email address.", returncode=EXIT_USAGE
                )
            recipients += staff
        if not recipients:
            raise CommandError(
                "Name at least one recipient: an EMAIL, --user or --staff.",
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
                label = recipient.address or "(no address)"
                self.stdout.write(self.style.ERROR(f"rejected  {label}: {recipient.error}"))
            if summary.dry_run:
                for recipient in summary.planned:
                    self.stdout.write(f"would send  {recipient.address}")
            rows = summary.logs().exclude(status=MailStatus.REJECTED)
            # Rows handed to a worker have no outcome yet, unless we waited for it.
            for log in rows if outcomes_known or not summary.handed_to_worker else rows.none():
                self.stdout.write(self._line(log.status, log.recipient, log.error))
        if verbosity >= 1 or not summary.ok:
            self.stdout.write(self._summary_line(summary))

    def _line(self, status: str, recipient: str, error: str) -> str:
        text = f"{status:<8}  {recipient}" + (f": {error}" if error else "")
        if status == MailStatus.FAILED:
            return self.style.ERROR(text)
        if status == MailStatus.QUEUED:
            return self.style.WARNING(text)
        return self.style.SUCCESS(text)

    def _summary_line(self, summary: SendSummary) -> str:
        if summary.dry_run:
            return (
                f"Dry run via mailer {summary.mailer!r}: {len(summary.planned)} would be sent, "
                f"{summary.rejected} rejected. Nothing was sent or logged."
            )
        parts = [f"{summary.sent} sent", f"{summary.failed} failed", f"{summary.rejected} rejected"]
        if summary.queued:
            parts.append(f"{summary.queued} queued")
        return f"{', '.join(parts)} via mailer {summary.mailer!r} (batch {summary.batch_id})."

    def _exit_status(self, summary: SendSummary) -> None:
        if any(not recipient.suppressed for recipient in summary.invalid):
            raise CommandError(
                f"{summary.rejected} recipient(s) rejected; nothing was sent. "
                "Fix the entries above and run again.",
                returncode=EXIT_USAGE,
            )
        if summary.failed:
            raise CommandError(
                f"{summary.failed} message(s) failed; the reasons are in the mail log "
                f"(batch {summary.batch_id}).",
                returncode=EXIT_FAILED,
            )
        if summary.worker_error:
            raise CommandError(summary.worker_notice, returncode=EXIT_FAILED)
        if summary.suppressed:
            # The others went out; these did not, on purpose: say how to override.
            raise CommandError(
                f"{summary.suppressed} recipient(s) are on the suppression list and were "
                "not sent to (reasons above); --ignore-suppression sends anyway.",
                returncode=EXIT_FAILED,
            )


def _as_json(summary: SendSummary) -> dict[str, Any]:
    messages: list[dict[str, Any]]
    if summary.dry_run:
        messages = [
            {"recipient": r.address, "user_id": r.user_id, "status": "would_send"}
            for r in summary.planned
        ] + [
            {"recipient": r.address, "user_id": r.user_id, "status": "rejected", "error": r.error}
            for r in summary.invalid
        ]
    else:
        messages = [
            {
                "recipient": log.recipient,
                "user_id": log.user_id,
                "status": log.status,
                "error": log.error,
                "smtp_code": log.smtp_code,
                "message_id": log.message_id,
                "esp_message_id": log.esp_message_id,
                "log_id": log.pk,
            }
            for log in summary.logs()
        ]
    return {
        "mailer": summary.mailer,
        "batch_id": str(summary.batch_id) if summary.batch_id else None,
        "worker_error": summary.worker_error,
        "dry_run": summary.dry_run,
        "ok": summary.ok,
        "counts": {
            "sent": summary.sent,
            "failed": summary.failed,
            "rejected": summary.rejected,
            "suppressed": summary.suppressed,
            "queued": summary.queued,
        },
        "messages": messages,
    }


def _os_user() -> str:
    """Who runs the command, as the operating system knows them ("" if it cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No login name in the environment and no passwd entry for the uid (containers).
        return ""
