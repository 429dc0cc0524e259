"""``sendtestmail --verify``: the command's side of proof of arrival (kept out of the command)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.arrival.health import check_alerts
from mailops.arrival.verify import VerifyResult, send_and_verify
from mailops.conf import get_setting
from mailops.models import MailTrigger

EXIT_FAILED = 1
EXIT_USAGE = 2

# Options that --verify does not combine with.
NOT_WITH_VERIFY = {
    "users": "--user",
    "staff": "--staff",
    "dry_run": "--dry-run",
    "queue": "--async",
    "wait": "--wait",
}


def run_verify(command: BaseCommand, options: dict[str, Any]) -> None:
    """Send, wait for arrival, report; raise ``CommandError`` unless it reached the inbox."""
    if not options["verify"]:
        raise CommandError(_("--verify-timeout needs --verify."), returncode=EXIT_USAGE)
    refused = [flag for name, flag in NOT_WITH_VERIFY.items() if options[name]]
    if refused:
        raise CommandError(
            _("--verify sends to addresses only; drop %(options)s.")
            % {"options": ", ".join(refused)},
            returncode=EXIT_USAGE,
        )
    timeout = options["verify_timeout"]
    if timeout is None:
        timeout = float(get_setting("VERIFY_TIMEOUT"))
    if timeout <= 0:
        raise CommandError(_("--verify-timeout must be a positive number."), returncode=EXIT_USAGE)
    show = options["verbosity"] >= 1 and not options["json"] and command.stderr.isatty()
    waiting = _waiting_line(command, timeout) if show else None
    try:
        result = send_and_verify(
            options["emails"],
            using=options["using"],
            timeout=timeout,
            trigger=MailTrigger.COMMAND,
            waiting=waiting,
        )
    except (ImproperlyConfigured, ValueError) as error:
        raise CommandError(str(error), returncode=EXIT_USAGE) from None
    finally:
        if show:
            command.stderr.write("", ending="\n")
    # The canary's outcome may raise or clear the mailer's alert (ALERT_WEBHOOK).
    check_alerts(result.summary.mailer)
    if options["json"]:
        command.stdout.write(json.dumps(as_json(result), indent=2))
    elif options["verbosity"] >= 1:
        for arrival in result.arrivals:
            style = command.style.SUCCESS if arrival.passed else command.style.ERROR
            command.stdout.write(
                style(f"{arrival.arrival:<8}  {arrival.recipient}: {arrival.line()}")
            )
    _exit_status(result)


def _waiting_line(command: BaseCommand, timeout: float) -> Any:
    def waiting(elapsed: float) -> None:
        line = _("Waiting for the test mail to arrive: %(elapsed)d s of %(timeout)g s") % {
            "elapsed": round(elapsed),
            "timeout": timeout,
        }
        command.stderr.write("\r" + line, style_func=lambda text: text, ending="")
        command.stderr.flush()

    return waiting


def _exit_status(result: VerifyResult) -> None:
    summary = result.summary
    if summary.rejected:
        raise CommandError(
            ngettext(
                "%(count)d recipient rejected; nothing was sent.",
                "%(count)d recipients rejected; nothing was sent.",
                summary.rejected,
            )
            % {"count": summary.rejected},
            returncode=EXIT_USAGE,
        )
    if summary.failed or not result.arrivals:
        log = summary.logs().first()
        reason = log.error if log is not None and log.error else _("the mailer did not accept it")
        raise CommandError(_("Not sent: %(reason)s") % {"reason": reason}, returncode=EXIT_FAILED)
    failed = [a for a in result.arrivals if not a.passed]
    if failed:
        first = failed[0]
        values = {
            "recipient": first.recipient,
            "line": first.line(),
            "hint": first.hint(),
            "log_id": first.log_id,
        }
        message = (
            _("%(recipient)s: %(line)s. Hint: %(hint)s. (mail log entry %(log_id)s)")
            if first.hint()
            else _("%(recipient)s: %(line)s. (mail log entry %(log_id)s)")
        )
        raise CommandError(message % values, returncode=EXIT_FAILED)


def as_json(result: VerifyResult) -> dict[str, Any]:
    return {
        "mailer": result.summary.mailer,
        "batch_id": str(result.summary.batch_id) if result.summary.batch_id else None,
        "mailbox": result.mailbox.username,
        "ok": result.ok,
        "messages": [arrival.as_dict() for arrival in result.arrivals],
    }
