"""One ``mailbounces`` run over one or every mailer: shared by the command and the task."""

from __future__ import annotations

from datetime import date

from django.utils.translation import gettext

from mailops.arrival.mailboxes import MailboxURLError
from mailops.bounces.results import MailboxRun
from mailops.bounces.service import NoBounceMailbox, bounce_mailboxes, read_bounces
from mailops.exceptions import UnknownMailer
from mailops.services import resolve_mailer

EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """What was asked cannot be done as asked (no such mailer, no mailbox, ...)."""


def read_mailboxes(
    *,
    using: str | None = None,
    all_mailers: bool = False,
    since: date | None = None,
    dry_run: bool = False,
    move_to: str | None = None,
) -> list[MailboxRun]:
    """Read the mailbox of mailer ``using`` (or of every mailer), one run per account.

    Raises :class:`UsageError` for an unknown mailer, a mailer without a
    mailbox, a malformed mailbox entry, or ``--all-mailers`` with no mailbox
    configured at all. A mailbox that cannot be read is not an error here:
    its run says why (``MailboxRun.error``).
    """
    try:
        alias = None if all_mailers else resolve_mailer(using)
        groups = bounce_mailboxes(alias, all_mailers=all_mailers)
    except (UnknownMailer, NoBounceMailbox, MailboxURLError) as error:
        raise UsageError(str(error)) from None
    if not groups:
        raise UsageError(
            gettext(
                "no mailer has a mailbox to read bounces from: set MAILBOX_URL "
                "(or MAILBOX_<ALIAS>_URL, or MAILOPS['MAILBOXES'])"
            )
        )
    return [
        read_bounces(aliases, mailbox, since=since, dry_run=dry_run, move_to=move_to)
        for aliases, mailbox in groups
    ]
