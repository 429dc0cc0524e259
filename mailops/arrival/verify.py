"""Send a test mail and prove it arrived: poll the mailbox, record where and how fast.

:func:`send_and_verify` is what ``sendtestmail --verify``, the admin's
"Send and verify" and the hourly canary all run. The outcome lands on the
``MailLog`` row (``arrival``, ``arrived_at``, ``arrival_folder``,
``authentication_results``, ``arrival_error``) so the admin and
``/mail/health/`` can show it later.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authres import AuthenticationResultsHeader
from authres.core import AuthResError
from django.utils import timezone

from mailops.arrival.imap import FoundMessage, MailboxError, find_messages
from mailops.arrival.mailboxes import Mailbox, MailboxURLError, mailbox_for
from mailops.models import ArrivalStatus, MailLog, MailTrigger
from mailops.recipients import Recipient, from_addresses
from mailops.services import SendSummary, resolve_mailer, send_test_mail

# First pause between two looks at the mailbox; doubled up to MAX_POLL_INTERVAL.
FIRST_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 15.0

# What authentication_results says when no header of the receiving server is there.
NO_TRUSTED_VERDICT = "no trusted verdict"
UNTRUSTED_HINT = (
    "if the header is your receiving server's, set its name as the mailbox's authserv_id "
    "(MAILOPS['MAILBOXES'][alias]['authserv_id'] or ?authserv_id= on MAILBOX_URL)"
)

HINTS = {
    ArrivalStatus.JUNK: "check SPF, DKIM and DMARC for the sender's domain (see the verdicts)",
    ArrivalStatus.MISSING: "look for a bounce in the sender's mailbox, or wait longer "
    "with --verify-timeout",
    ArrivalStatus.ERROR: "check the mailbox settings (MAILBOX_URL / MAILOPS['MAILBOXES'])",
}


class NoMailbox(MailboxURLError):
    """The mailer has no mailbox to read test mails back from."""

    def __init__(self, alias: str) -> None:
        variable = "MAILBOX_URL" if alias == "default" else f"MAILBOX_{alias.upper()}_URL"
        super().__init__(variable, f"not set: mailer {alias!r} has no mailbox to verify arrival in")


@dataclass
class Arrival:
    """What became of one message sent for verification."""

    log_id: int
    recipient: str
    message_id: str
    arrival: str
    sent_at: datetime | None = None
    arrived_at: datetime | None = None
    folder: str = ""
    authentication_results: str = ""
    error: str = ""

    @property
    def latency(self) -> float | None:
        """Seconds from the mailer's acceptance to the receiving server storing it."""
        if self.sent_at is None or self.arrived_at is None:
            return None
        return round((self.arrived_at - self.sent_at).total_seconds(), 1)

    @property
    def passed(self) -> bool:
        """In the inbox, and no untrusted verdict in place of the receiver's."""
        return self.arrival == ArrivalStatus.INBOX and has_trusted_verdict(
            self.authentication_results
        )

    def line(self) -> str:
        """One line for the operator."""
        if self.arrival == ArrivalStatus.INBOX and not self.passed:
            return (
                f"arrived in {self.folder} after {self.latency} s, but with "
                f"{self.authentication_results}"
            )
        if self.arrival == ArrivalStatus.INBOX:
            verdicts = f" ({self.authentication_results})" if self.authentication_results else ""
            return f"arrived in {self.folder} after {self.latency} s{verdicts}"
        if self.arrival == ArrivalStatus.JUNK:
            verdicts = f"; {self.authentication_results}" if self.authentication_results else ""
            return f"landed in junk folder {self.folder} after {self.latency} s{verdicts}"
        return self.error

    def hint(self) -> str:
        if self.arrival == ArrivalStatus.INBOX and not self.passed:
            return UNTRUSTED_HINT
        return HINTS.get(ArrivalStatus(self.arrival), "") if self.arrival else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "recipient": self.recipient,
            "message_id": self.message_id,
            "arrival": self.arrival,
            "arrived_at": self.arrived_at.isoformat() if self.arrived_at else None,
            "arrival_folder": self.folder,
            "authentication_results": self.authentication_results,
            "latency_seconds": self.latency,
            "error": self.error,
        }


@dataclass
class VerifyResult:
    """The send and what the mailbox showed for each message that was accepted."""

    summary: SendSummary
    mailbox: Mailbox
    arrivals: list[Arrival] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every message was accepted and arrived in the inbox."""
        return (
            self.summary.ok
            and not self.summary.queued
            and bool(self.arrivals)
            and all(arrival.passed for arrival in self.arrivals)
        )


def verify_mailbox(using: str | None) -> tuple[str, Mailbox]:
    """``(alias, mailbox)`` for the mailer, or :class:`NoMailbox` / :class:`UnknownMailer`."""
    alias = resolve_mailer(using)
    mailbox = mailbox_for(alias)
    if mailbox is None:
        raise NoMailbox(alias)
    return alias, mailbox


def send_and_verify(
    addresses: list[str],
    *,
    using: str | None = None,
    timeout: float,
    trigger: str = MailTrigger.COMMAND,
    triggered_by: Any = None,
    waiting: Callable[[float], None] | None = None,
) -> VerifyResult:
    """Send the test mail (to the mailbox's own address when none is given) and verify it.

    ``waiting`` is called with the seconds waited so far between looks at
    the mailbox. Nothing in the mailbox is changed.
    """
    alias, mailbox = verify_mailbox(using)
    recipients: list[Recipient] = from_addresses(addresses or [mailbox.address])
    summary = send_test_mail(
        recipients, using=alias, trigger=trigger, triggered_by=triggered_by, abort_on_rejected=True
    )
    result = VerifyResult(summary=summary, mailbox=mailbox)
    accepted = [log for log in summary.logs() if log.accepted and log.message_id]
    if accepted:
        result.arrivals = verify_arrival(
            accepted, mailbox=mailbox, timeout=timeout, waiting=waiting
        )
    return result


def verify_arrival(
    logs: list[MailLog],
    *,
    mailbox: Mailbox,
    timeout: float,
    waiting: Callable[[float], None] | None = None,
) -> list[Arrival]:
    """Poll ``mailbox`` for each row's Message-ID until all are found or ``timeout`` passes.

    ``timeout`` is a deadline for everything, the IMAP sessions included:
    however slowly the server answers, this returns soon after it (the
    mailbox's own ``timeout`` bounds each session further).
    """
    started = time.monotonic()
    deadline = started + timeout
    pending = {log.pk: log for log in logs}
    arrivals: dict[int, Arrival] = {}
    # A server that is down or slow may be back at the next look; remember why not.
    last_error: dict[int, str] = {}
    looked = completed = False
    pause = FIRST_POLL_INTERVAL
    try:
        while pending:
            if looked and time.monotonic() >= deadline:
                for pk, log in pending.items():
                    if pk in last_error:
                        arrivals[pk] = _record(log, ArrivalStatus.ERROR, error=last_error[pk])
                    else:
                        reason = f"not in {mailbox.username}'s mailbox after {timeout:g} s"
                        arrivals[pk] = _record(log, ArrivalStatus.MISSING, error=reason)
                break
            looked = True
            # One IMAP session per look, for every row still unaccounted for.
            try:
                found = find_messages(
                    mailbox, [log.message_id for log in pending.values()], deadline=deadline
                )
            except MailboxError as error:
                for pk, log in list(pending.items()):
                    if error.expired and completed and time.monotonic() >= deadline:
                        # The deadline ended this look; the last whole look stands ("missing").
                        continue
                    last_error[pk] = str(error)
                    if error.permanent:
                        arrivals[pk] = _record(log, ArrivalStatus.ERROR, error=str(error))
                        del pending[pk]
            else:
                completed = True
                for pk, log in list(pending.items()):
                    last_error.pop(pk, None)
                    if log.message_id in found:
                        arrivals[pk] = _record_found(log, found[log.message_id], mailbox)
                        del pending[pk]
            remaining = deadline - time.monotonic()
            if pending and remaining > 0:
                if waiting is not None:
                    waiting(time.monotonic() - started)
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, MAX_POLL_INTERVAL)
    except BaseException:
        # Whatever stopped the reading (an interrupt, a bug), no row is left unmarked.
        for log in pending.values():
            if log.pk not in arrivals:
                _record(log, ArrivalStatus.ERROR, error="the verification stopped before it ended")
        raise
    return [arrivals[log.pk] for log in logs]


def summarize_authentication_results(values: list[str], *, authserv_id: str) -> str:
    """``"spf=pass dkim=pass dmarc=pass"`` from the topmost header by ``authserv_id``.

    Only the receiving server's own headers are believed (RFC 8601 §5):
    anyone upstream can add an Authentication-Results header saying "pass".
    Without one, or when the topmost one cannot be read, the text says
    ``no trusted verdict`` and why; with no header at all it is empty.
    """
    if not values:
        return ""
    trusted = authserv_id.lower()
    others: list[str] = []
    for value in values:
        try:
            header = AuthenticationResultsHeader.parse(f"Authentication-Results: {value}")
        except AuthResError:
            if _claimed_authserv_id(value) == trusted:
                return f"{NO_TRUSTED_VERDICT} (the header of {trusted} is unreadable)"
            continue
        if str(header.authserv_id).lower() != trusted:
            others.append(str(header.authserv_id))
            continue
        return " ".join(f"{r.method}={r.result}" for r in header.results)
    shown = ", ".join(dict.fromkeys(others)) or "unreadable headers"
    return f"{NO_TRUSTED_VERDICT} (Authentication-Results only from {shown}; trusted: {trusted})"


def has_trusted_verdict(authentication_results: str) -> bool:
    """Whether a row's ``authentication_results`` is not the "no trusted verdict" note."""
    return not authentication_results.startswith(NO_TRUSTED_VERDICT)


def _claimed_authserv_id(value: str) -> str:
    """The authserv-id a header claims, read without a full parse: before the first ``;``."""
    head = re.sub(r"\([^()]*\)", " ", value.split(";", 1)[0]).split()
    return head[0].strip('"').lower() if head else ""


def _record_found(log: MailLog, found: FoundMessage, mailbox: Mailbox) -> Arrival:
    now = timezone.now()
    sent_at = log.sent_at or log.created_at
    # The server's own storing time measures latency without our polling pauses;
    # clamp it, clocks differ.
    arrived_at = min(max(found.stored_at or now, sent_at), now)
    status = ArrivalStatus.JUNK if found.junk else ArrivalStatus.INBOX
    return _record(
        log,
        status,
        arrived_at=arrived_at,
        folder=found.folder,
        authentication_results=summarize_authentication_results(
            found.authentication_results, authserv_id=mailbox.trusted_authserv_id
        ),
    )


def _record(
    log: MailLog,
    status: str,
    *,
    arrived_at: datetime | None = None,
    folder: str = "",
    authentication_results: str = "",
    error: str = "",
) -> Arrival:
    fields = {
        "arrival": status,
        "verified_at": timezone.now(),
        "arrived_at": arrived_at,
        "arrival_folder": folder[:255],
        "authentication_results": authentication_results,
        "arrival_error": error,
    }
    # Not through move_to: arrival is beside the status, not a step of it.
    MailLog.objects.filter(pk=log.pk).update(updated_at=timezone.now(), **fields)
    return Arrival(
        log_id=log.pk,
        recipient=log.recipient,
        message_id=log.message_id,
        arrival=status,
        sent_at=log.sent_at or log.created_at,
        arrived_at=arrived_at,
        folder=folder,
        authentication_results=authentication_results,
        error=error,
    )
