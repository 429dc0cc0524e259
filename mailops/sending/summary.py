"""What a send reports back, and what it will do before it is sent."""

from __future__ import annotations

import uuid
import warnings
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import ngettext, ngettext_lazy

from mailops.models import ACCEPTED_STATUSES, MailLog, MailLogQuerySet, MailStatus
from mailops.recipients import Recipient
from mailops.sending.throttle import QuotaStatus

WORKER_UNREACHABLE = ngettext_lazy(
    "The task worker could not be reached (%(error)s): the %(n)d message of batch "
    "%(batch)s stays queued until `manage.py mailops_deliver` runs or the worker is back.",
    "The task worker could not be reached (%(error)s): the %(n)d messages of batch "
    "%(batch)s stay queued until `manage.py mailops_deliver` runs or the worker is back.",
    "n",
)


@dataclass
class SendSummary:
    """The result of one call to :func:`send_test_mail`."""

    #: The ``MAILERS`` alias the batch went through.
    mailer: str
    #: The batch's id, shared by all its ``MailLog`` rows (``None`` for a dry run).
    batch_id: uuid.UUID | None
    #: The batch's rows per status, ``{status: count}``.
    counts: dict[str, int] = field(default_factory=dict)
    #: The recipients refused before sending (invalid address, user without one).
    invalid: list[Recipient] = field(default_factory=list)
    #: With ``dry_run``: the valid recipients that would have been sent to.
    planned: list[Recipient] = field(default_factory=list)
    #: Nothing was sent or written: the call only validated.
    dry_run: bool = False
    #: True when invalid entries stopped the whole batch (nothing was sent).
    aborted: bool = False
    #: True when the rows were handed to a task worker: ``queued`` counts
    #: them, and their outcomes land in the log later (see ``logs()``).
    handed_to_worker: bool = False
    #: When rows waiting for a retry or a daily quota will be tried again.
    resumes_at: datetime | None = None
    #: Why the batch could not be handed to the worker (its rows stay queued).
    worker_error: str = ""
    #: A self-service send refused by the per-user limit (logged as rejected).
    limited: bool = False
    #: Recipients on the suppression list, logged as ``rejected`` (counted in
    #: ``rejected`` too); always 0 with ``ignore_suppression``.
    suppressed: int = 0

    @property
    def worker_notice(self) -> str:
        """What to tell the operator when the worker could not be reached, else ``""``."""
        if not self.worker_error:
            return ""
        return WORKER_UNREACHABLE % {
            "error": self.worker_error,
            "n": self.queued,
            "batch": self.batch_id,
        }

    @property
    def sent(self) -> int:
        """Messages the mailer accepted (``sent``, or a later tracking status)."""
        return sum(n for status, n in self.counts.items() if status in ACCEPTED_STATUSES)

    @property
    def failed(self) -> int:
        """Messages that failed (their reasons are on the rows)."""
        return self.counts.get(MailStatus.FAILED, 0)

    @property
    def queued(self) -> int:
        """Messages without an outcome yet (``queued`` or ``sending``)."""
        return self.counts.get(MailStatus.QUEUED, 0) + self.counts.get(MailStatus.SENDING, 0)

    @property
    def skipped(self) -> int:
        """Deprecated name of :attr:`rejected` (mailops 0.1)."""
        warnings.warn(
            "SendSummary.skipped is deprecated; use SendSummary.rejected.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.rejected

    @property
    def rejected(self) -> int:
        """Recipients refused before sending, each logged as a ``rejected`` row."""
        # A user queryset's rejected rows are counted by the database, not listed.
        return max(len(self.invalid), self.counts.get(MailStatus.REJECTED, 0))

    @property
    def ok(self) -> bool:
        """Every intended message was accepted (or is still queued) and none failed."""
        return not self.failed and not self.rejected

    def logs(self) -> MailLogQuerySet:
        """The batch's ``MailLog`` rows, in the order they were written."""
        if self.batch_id is None:
            return MailLog.objects.none()
        return MailLog.objects.for_batch(self.batch_id).order_by("pk")


@dataclass(frozen=True)
class DeliveryPlan:
    """How a batch of ``count`` messages would be delivered, before it is sent.

    Callers show :meth:`notice` on their confirmation page or before a
    command sends, so nobody learns only afterwards that a request blocked
    or that a quota holds most of the batch back.
    """

    #: The ``MAILERS`` alias.
    mailer: str
    #: How many messages.
    count: int
    #: Handed to a task worker; the caller returns at once.
    queued: bool
    #: Large, but delivered inside the caller (no worker backend configured).
    blocks: bool
    #: What is left of the mailer's daily quota.
    quota: QuotaStatus

    def notice(self) -> str:
        """What the operator should know first, or ``""``."""
        notes = []
        if self.queued:
            notes.append(
                ngettext(
                    "%(count)d message will be queued and sent by the task worker; "
                    "follow the progress in the mail log.",
                    "%(count)d messages will be queued and sent by the task worker; "
                    "follow the progress in the mail log.",
                    self.count,
                )
                % {"count": self.count}
            )
        elif self.blocks:
            notes.append(
                ngettext(
                    "%(count)d message will be sent before this returns: no task worker "
                    "is configured (TASKS uses Django's ImmediateBackend).",
                    "%(count)d messages will be sent before this returns: no task worker "
                    "is configured (TASKS uses Django's ImmediateBackend).",
                    self.count,
                )
                % {"count": self.count}
            )
        remaining = self.quota.remaining
        if remaining is not None and remaining < self.count:
            notes.append(
                ngettext(
                    "Mailer %(mailer)r may send %(remaining)d more message today "
                    "(daily quota %(limit)s, rolling 24 h): the other "
                    "%(rest)d stay queued and go out as the quota frees up.",
                    "Mailer %(mailer)r may send %(remaining)d more messages today "
                    "(daily quota %(limit)s, rolling 24 h): the other "
                    "%(rest)d stay queued and go out as the quota frees up.",
                    remaining,
                )
                % {
                    "mailer": self.mailer,
                    "remaining": remaining,
                    "limit": self.quota.limit,
                    "rest": self.count - remaining,
                }
            )
        return " ".join(notes)
