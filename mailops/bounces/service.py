"""Read a mailer's mailbox for bounces, delay notices and complaints, and apply them to the log.

:func:`read_bounces` is what ``manage.py mailbounces`` and
:func:`mailops.bounces.tasks.read_bounces_task` run. For each new message
(:mod:`mailops.bounces.mailbox`) it asks :func:`~mailops.bounces.reports.read_report`
what it says, finds the ``MailLog`` row of each recipient (:func:`find_log`)
and records the outcome through
:func:`~mailops.tracking.events.record_delivery_event`; a report that
matches no row, or cannot be read, becomes an ``UnmatchedBounce``. Each
folder's read position is saved after each report and when the run ends,
however it ends, so a run that stops (the deadline, a dropped connection)
loses nothing, and what was handled is not handled twice.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _

from mailops.arrival.imap import MailboxError, folders_to_read, imap_secrets, open_session
from mailops.arrival.mailboxes import Mailbox, mailbox_for, verifiable_aliases
from mailops.bounces.mailbox import NewMessage, Position, find_folder, move_message, new_messages
from mailops.bounces.matching import find_log
from mailops.bounces.models import MailboxCursor, UnmatchedBounce, UnmatchedKind
from mailops.bounces.reports import (
    AUTO_REPLY,
    BOUNCE,
    COMPLAINT,
    UNREADABLE,
    RecipientOutcome,
    Report,
    read_report,
)
from mailops.bounces.results import AUTO_REPLY_LINE, UNREADABLE_LINE, MailboxRun, ReportLine
from mailops.conf import get_setting, stored_language
from mailops.models import MailEventType
from mailops.redaction import redact
from mailops.tracking.events import (
    MAILBOX_SOURCE,
    DeliveryEvent,
    EventArrivedEarly,
    record_delivery_event,
)

# The caps of a bounce-reading session: a report with the returned message
# may be large, and one run may read many.
SESSION_CAP = 512 * 1024 * 1024
# What the literal of one message may exceed the size the server announced by.
LITERAL_SLACK = 64 * 1024


_UNMATCHED_KIND: dict[str, str] = {
    MailEventType.BOUNCED: UnmatchedKind.BOUNCED,
    MailEventType.DEFERRED: UnmatchedKind.DEFERRED,
    MailEventType.COMPLAINED: UnmatchedKind.COMPLAINED,
}


class NoBounceMailbox(ImproperlyConfigured):
    """The mailer has no mailbox to read bounces from (a setting to add, not a server down)."""


def mailbox_identity(mailbox: Mailbox) -> str:
    """The account a mailbox reads, without its password: ``user@host:port``."""
    return f"{mailbox.username}@{mailbox.host}:{mailbox.port}"


def bounce_mailboxes(using: str | None, *, all_mailers: bool) -> list[tuple[list[str], Mailbox]]:
    """``[(aliases, mailbox)]`` to read: one mailer's, or every mailer's, each account once.

    Mailers sharing an account are read together (the reports in it may be
    about either's mail). Raises :class:`NoBounceMailbox` for a mailer
    without one and ``MailboxURLError`` for a malformed entry.
    """
    aliases = verifiable_aliases() if all_mailers else [using or get_setting("DEFAULT_MAILER")]
    groups: dict[str, tuple[list[str], Mailbox]] = {}
    for alias in aliases:
        mailbox = mailbox_for(alias)
        if mailbox is None:
            variable = "MAILBOX_URL" if alias == "default" else f"MAILBOX_{alias.upper()}_URL"
            raise NoBounceMailbox(
                _(
                    "mailer %(alias)r has no mailbox to read bounces from: set %(variable)s "
                    "or MAILOPS['MAILBOXES'][%(alias)r]"
                )
                % {"alias": alias, "variable": variable}
            )
        identity = mailbox_identity(mailbox)
        if identity in groups:
            groups[identity][0].append(alias)
        else:
            groups[identity] = ([alias], mailbox)
    # Every mailer with that account, configured or not among those asked for.
    for identity, (group, _mailbox) in groups.items():
        for alias in verifiable_aliases():
            other = mailbox_for(alias)
            if alias not in group and other is not None and mailbox_identity(other) == identity:
                group.append(alias)
    return list(groups.values())


def read_bounces(
    aliases: list[str],
    mailbox: Mailbox,
    *,
    since: date | None = None,
    dry_run: bool = False,
    move_to: str | None = None,
) -> MailboxRun:
    """Read ``mailbox``'s new messages and apply each report to the log of ``aliases``' mail.

    Never raises for the mailbox's sake: a server that cannot be reached, is
    too slow or refuses something ends the run with ``error`` set, keeping
    what was done before. With ``dry_run`` nothing is written (no row, no
    position) and nothing moved.

    Its notes and errors are written in the site's language (see
    ``stored_language``): an unreadable report's note is stored in its row.
    """
    with stored_language():
        return _read_bounces(aliases, mailbox, since=since, dry_run=dry_run, move_to=move_to)


def _read_bounces(
    aliases: list[str],
    mailbox: Mailbox,
    *,
    since: date | None,
    dry_run: bool,
    move_to: str | None,
) -> MailboxRun:
    run = MailboxRun(mailer=aliases[0], mailbox=mailbox_identity(mailbox), dry_run=dry_run)
    max_size: int = get_setting("BOUNCE_MAX_MESSAGE_SIZE")
    ends = time.monotonic() + float(get_setting("BOUNCE_READ_TIMEOUT"))
    positions = {
        cursor.folder: Position(cursor.uidvalidity, cursor.last_uid)
        for cursor in MailboxCursor.objects.filter(mailbox=run.mailbox)
    }
    reader = _Reader(run, aliases=aliases, dry_run=dry_run)
    # Where each folder was read to, written when a report was handled and
    # at the end (not once per ordinary message: a first run may look at
    # thousands); whatever ends the run, what was handled is remembered.
    read_to: dict[str, NewMessage] = {}
    try:
        with open_session(
            mailbox, ends=ends, max_literal=max_size + LITERAL_SLACK, max_session=SESSION_CAP
        ) as client:
            target = find_folder(client, move_to) if move_to else None
            folders = [f for f in folders_to_read(client, mailbox) if target is None or f != target]
            waiting_folder = ""
            for message in new_messages(
                client,
                folders,
                positions=positions,
                since=since,
                max_size=max_size,
                readonly=target is None or dry_run,
            ):
                if message.folder == waiting_folder:
                    # An earlier report of this folder must be read again first.
                    continue
                run.messages += 1
                handled, is_report = reader.handle(message)
                if not handled:
                    waiting_folder = message.folder
                    continue
                if dry_run:
                    continue
                read_to[message.folder] = message
                if message.raw is not None or message.too_large:
                    _remember(run.mailbox, message)
                if target is not None and is_report:
                    move_message(client, message.uid, target)
                    run.moved += 1
    except MailboxError as error:
        run.error = redact(str(error), imap_secrets(mailbox))
        if run.messages:
            run.error = _(
                "%(error)s; what was read before is kept, the next run goes on from there"
            ) % {"error": run.error}
    finally:
        for message in read_to.values():
            _remember(run.mailbox, message)
    return run


class _Reader:
    """Turns one message into report lines and log changes (for one run)."""

    def __init__(self, run: MailboxRun, *, aliases: list[str], dry_run: bool) -> None:
        self.run = run
        self.aliases = aliases
        self.dry_run = dry_run
        self.window = timedelta(seconds=get_setting("BOUNCE_MATCH_WINDOW"))

    def handle(self, message: NewMessage) -> tuple[bool, bool]:
        """Apply the message: ``(handled, is a bounce or complaint)``.

        Not handled: it must be read again later (a row it names is still being sent).
        """
        if message.too_large:
            self._unreadable(
                message,
                _(
                    "skipped: %(size)s bytes, more than BOUNCE_MAX_MESSAGE_SIZE (%(max)s); "
                    "left in the mailbox unread"
                )
                % {
                    "size": f"{message.size:,}",
                    "max": f"{get_setting('BOUNCE_MAX_MESSAGE_SIZE'):,}",
                },
                subject=_subject(message),
                identity=f"size:{message.folder}:{message.uidvalidity}:{message.uid}",
            )
            return True, False
        if message.raw is None:
            return True, False
        report = read_report(message.raw)
        if report.kind == UNREADABLE:
            self._unreadable(message, report.note, subject=report.subject, identity=report.identity)
        elif report.kind == AUTO_REPLY:
            self.run.lines.append(
                ReportLine(
                    folder=message.folder,
                    uid=message.uid,
                    kind=AUTO_REPLY_LINE,
                    note=_("an automatic reply (vacation), not a bounce: nothing changed"),
                )
            )
        elif report.kind in (BOUNCE, COMPLAINT):
            for outcome in _distinct(report.outcomes):
                if not self._apply(message, report, outcome):
                    return False, True
            return True, True
        return True, False

    def _apply(self, message: NewMessage, report: Report, outcome: RecipientOutcome) -> bool:
        received_at = message.received_at or timezone.now()
        log, matched_by, why = find_log(
            outcome,
            report.original_message_id,
            mailers=self.aliases,
            received_at=received_at,
            window=self.window,
        )
        diagnostic = redact(outcome.diagnostic)
        line = ReportLine(
            folder=message.folder,
            uid=message.uid,
            kind=outcome.event_type,
            recipient=outcome.recipient,
            dsn_status=outcome.dsn_status,
            diagnostic=diagnostic,
            remote_mta=outcome.remote_mta,
        )
        self.run.lines.append(line)
        if log is None:
            line.note = _("%(why)s; kept as an unmatched report") % {"why": why}
            if not self.dry_run:
                self._keep_unmatched(message, report, outcome, diagnostic)
            return True
        line.log_id, line.matched_by = log.pk, matched_by
        if self.dry_run:
            line.status, line.note = log.status, _("dry run: nothing recorded")
            return True
        event = DeliveryEvent(
            event_type=outcome.event_type,
            source=MAILBOX_SOURCE,
            fingerprint=_fingerprint(report.identity, outcome),
            occurred_at=received_at,
            description=_("%(format)s report in %(folder)s: %(subject)s")
            % {"format": report.format, "folder": message.folder, "subject": report.subject},
            mta_response=diagnostic,
            dsn_status=outcome.dsn_status,
            remote_mta=outcome.remote_mta,
            matched_by=matched_by,
        )
        before = log.status
        try:
            _event, created = record_delivery_event(log, event)
        except EventArrivedEarly:
            line.note = _("its entry is still being sent; read again next run")
            return False
        log.refresh_from_db(fields=["status"])
        line.status = log.status
        line.changed = created and log.status != before
        if not created:
            line.note = _("already recorded")
        elif not line.changed:
            line.note = _("recorded; the entry stays %(status)s") % {"status": log.status}
        return True

    def _unreadable(self, message: NewMessage, note: str, *, subject: str, identity: str) -> None:
        self.run.lines.append(
            ReportLine(folder=message.folder, uid=message.uid, kind=UNREADABLE_LINE, note=note)
        )
        if self.dry_run:
            return
        UnmatchedBounce.objects.get_or_create(
            fingerprint=hashlib.sha256(f"unreadable\0{identity}".encode()).hexdigest(),
            defaults={
                "received_at": message.received_at,
                "mailer": self.run.mailer,
                "mailbox": self.run.mailbox,
                "folder": message.folder[:255],
                "uid": message.uid,
                "kind": UnmatchedKind.UNREADABLE,
                "diagnostic": note,
                "report_subject": subject[:255],
            },
        )

    def _keep_unmatched(
        self, message: NewMessage, report: Report, outcome: RecipientOutcome, diagnostic: str
    ) -> None:
        UnmatchedBounce.objects.get_or_create(
            fingerprint=_fingerprint(report.identity, outcome),
            defaults={
                "received_at": message.received_at,
                "mailer": self.run.mailer,
                "mailbox": self.run.mailbox,
                "folder": message.folder[:255],
                "uid": message.uid,
                "kind": _UNMATCHED_KIND[outcome.event_type],
                "recipient": outcome.recipient[:320],
                "original_message_id": report.original_message_id[:255],
                "dsn_status": outcome.dsn_status,
                "remote_mta": outcome.remote_mta,
                "diagnostic": diagnostic,
                "report_subject": report.subject[:255],
            },
        )


def _remember(mailbox: str, message: NewMessage) -> None:
    cursor, created = MailboxCursor.objects.get_or_create(
        mailbox=mailbox,
        folder=message.folder,
        defaults={"uidvalidity": message.uidvalidity, "last_uid": message.uid},
    )
    if created:
        return
    if cursor.uidvalidity != message.uidvalidity:
        cursor.uidvalidity, cursor.last_uid = message.uidvalidity, message.uid
    elif message.uid > cursor.last_uid:
        cursor.last_uid = message.uid
    else:
        return
    cursor.save(update_fields=["uidvalidity", "last_uid", "updated_at"])


def _distinct(outcomes: tuple[RecipientOutcome, ...]) -> list[RecipientOutcome]:
    seen: set[tuple[str, str]] = set()
    distinct = []
    for outcome in outcomes:
        key = (outcome.recipient.lower(), outcome.event_type)
        if key not in seen:
            seen.add(key)
            distinct.append(outcome)
    return distinct


def _fingerprint(identity: str, outcome: RecipientOutcome) -> str:
    basis = f"report\0{identity}\0{outcome.recipient.lower()}\0{outcome.event_type}"
    return hashlib.sha256(basis.encode()).hexdigest()


def _subject(message: NewMessage) -> str:
    return " ".join(str(message.headers.get("Subject") or "").split())
