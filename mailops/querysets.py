"""The one status machine: the only way a ``MailLog`` row's status changes in the database.

Named selections of the log, and conditional UPDATEs that move only the rows
whose current status may reach the new one (``ALLOWED_TRANSITIONS`` in
:mod:`mailops.statuses`). ``MailLog.objects`` is ``MailLogQuerySet.as_manager()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat, Left
from django.db.models.lookups import In
from django.utils import timezone

from mailops.statuses import ACCEPTED_STATUSES, UNFINISHED_STATUSES, MailStatus, sources_of

if TYPE_CHECKING:
    from mailops.models import MailLog

# On PostgreSQL the admin's subject search matches this many leading
# characters through an index (maillog_subject_prefix_idx). Migration 0005
# adds it and maillog_recipient_prefix_idx, each built the way the database
# at hand can use for a case-insensitive prefix search, which Meta.indexes
# cannot express.
SUBJECT_PREFIX_LENGTH = 255

# The fields a delivery outcome changes on a row (written from the row in memory).
OUTCOME_FIELDS = (
    "status",
    "error",
    "smtp_code",
    "sent_at",
    "esp_message_id",
    "updated_at",
    "next_attempt_at",
    "in_doubt",
)


class MailLogQuerySet(models.QuerySet["MailLog"]):
    """Named selections of the log, and the only way a row's status changes in the database.

    Every status change below is a conditional UPDATE that moves only the rows
    whose current status may reach the new one (``ALLOWED_TRANSITIONS``): a
    row another worker already moved, or a replayed webhook, is left alone.
    """

    # Set by by_pks(): the rows are reached through the primary key only.
    _through_pks = False

    def _clone(self) -> MailLogQuerySet:
        clone = super()._clone()  # type: ignore[misc]  # not in django-stubs
        clone._through_pks = self._through_pks
        return clone

    def _in_status(self, *statuses: str) -> MailLogQuerySet:
        """Rows whose status is one of ``statuses`` (every status selection goes through here)."""
        if not self._through_pks:
            if len(statuses) == 1:
                return self.filter(status=statuses[0])
            return self.filter(status__in=statuses)
        # An expression no index holds: the planner cannot read a status index instead.
        return self.filter(In(Concat(F("status"), Value("")), list(statuses)))

    def for_batch(self, batch_id: uuid.UUID | str) -> MailLogQuerySet:
        """The rows of one batch."""
        return self.filter(batch_id=batch_id)

    def queued(self) -> MailLogQuerySet:
        """Rows waiting for delivery (or for a retry or a daily quota)."""
        return self._in_status(MailStatus.QUEUED)

    def sending(self) -> MailLogQuerySet:
        """Rows a delivery run has claimed and is sending."""
        return self._in_status(MailStatus.SENDING)

    def sent(self) -> MailLogQuerySet:
        """Rows the mailer accepted: ``sent``, or a later provider status (delivered, ...)."""
        return self._in_status(*ACCEPTED_STATUSES)

    def failed(self) -> MailLogQuerySet:
        """Rows that failed."""
        return self._in_status(MailStatus.FAILED)

    def rejected(self) -> MailLogQuerySet:
        """Rows never attempted (invalid address, user without one, a limit)."""
        return self._in_status(MailStatus.REJECTED)

    def unfinished(self) -> MailLogQuerySet:
        """Rows without an outcome yet (queued or being sent)."""
        return self._in_status(*UNFINISHED_STATUSES)

    def claimed_by(self, token: str) -> MailLogQuerySet:
        """The rows one delivery run claimed (and has not settled yet)."""
        return self.filter(claimed_by=token)._in_status(MailStatus.SENDING)

    def by_pks(self, pks: Collection[int]) -> MailLogQuerySet:
        """The rows ``pks`` (a delivery run's chunk), found through the primary key only.

        A chunk's statements also name a status (rows still ``queued``,
        still ``sending``). PostgreSQL's statistics mostly say that few rows
        have it (they were gathered between batches, or never, on a new
        table), so its planner would read the status index, which then holds
        the whole batch and every earlier entry a vacuum has not removed
        yet: each chunk would read them all, which made one chunk's UPDATE
        take ten seconds on a log of 200,000 rows with a batch of 50,000.
        On this queryset a status is compared in a form no index holds, so
        the primary key is the only way in. Call it before any status
        selection: one made earlier keeps its plain, indexable form.
        """
        if not pks:
            return self.none()
        chunk = self.filter(pk__in=sorted(pks))
        chunk._through_pks = True
        return chunk

    def search(self, term: str) -> MailLogQuerySet:
        """Rows whose recipient or subject starts with ``term`` (any case), or whose
        Message-ID (with or without ``< >``) or provider message id is ``term``.

        The admin's search and ``exportmaillog --search``: one term, prefix or
        exact lookups only, so an index can answer.
        """
        message_ids = {term}
        if not term.startswith("<"):
            message_ids.add(f"<{term}>")
        queryset: Any = self
        subject = Q(subject__istartswith=term)
        if connections[self.db].vendor == "postgresql":
            # PostgreSQL's subject index covers the first characters only (a
            # whole subject can outgrow an index entry), so the lookup must
            # name that expression; a longer term also checks the whole
            # subject, among the rows the index found.
            queryset = queryset.alias(subject_head=Left("subject", SUBJECT_PREFIX_LENGTH))
            head = Q(subject_head__istartswith=term[:SUBJECT_PREFIX_LENGTH])
            subject = head & subject if len(term) > SUBJECT_PREFIX_LENGTH else head
        query = (
            Q(recipient__istartswith=term)
            | subject
            | Q(message_id__in=sorted(message_ids))
            | Q(esp_message_id=term)
        )
        return queryset.filter(query)

    def status_counts(self) -> dict[str, int]:
        """``{status: count}`` for the rows of this queryset, one query."""
        rows = self.order_by().values("status").annotate(n=Count("pk"))
        return {row["status"]: row["n"] for row in rows}

    # --- status changes ----------------------------------------------------------

    def move_to(self, new: str, **fields: Any) -> int:
        """Set ``status=new`` on the rows allowed to reach it; return how many.

        Rows whose current status may not move to ``new`` are left untouched,
        which makes concurrent or replayed updates safe.
        """
        return self._in_status(*sources_of(new)).update(
            status=new, updated_at=timezone.now(), **fields
        )

    def claim(self, token: str) -> int:
        """Queued rows -> ``sending``, marked with the run's ``token``; one attempt more."""
        return self.queued().move_to(
            MailStatus.SENDING,
            claimed_by=token,
            attempts=F("attempts") + 1,
            in_doubt=False,
        )

    def unclaim(self) -> int:
        """Rows being sent but never attempted -> ``queued`` again, their attempt given back."""
        return self.sending().move_to(
            MailStatus.QUEUED, next_attempt_at=None, claimed_by="", attempts=F("attempts") - 1
        )

    def mark_sent(self, *, at: datetime) -> int:
        """Rows being sent -> ``sent`` at ``at``, with no provider id and no error."""
        return self.sending().move_to(
            MailStatus.SENT,
            error="",
            smtp_code=None,
            next_attempt_at=None,
            esp_message_id="",
            sent_at=at,
        )

    def fail(self, reason: str, *, smtp_code: int | None = None, attempt: bool = False) -> int:
        """Rows without an outcome -> ``failed`` with ``reason`` (``attempt``: it counts as one)."""
        fields: dict[str, Any] = {"error": reason, "smtp_code": smtp_code}
        if attempt:
            fields["attempts"] = F("attempts") + 1
        return self.move_to(MailStatus.FAILED, **fields)

    def requeue(self, reason: str) -> int:
        """Rows being sent (or failed) -> ``queued`` again, due at once, saying why."""
        return self.move_to(MailStatus.QUEUED, next_attempt_at=None, claimed_by="", error=reason)

    def settle(self, rows: Iterable[MailLog]) -> int:
        """Write the outcomes of ``rows`` (set in memory through ``MailLog.set_status``).

        Only rows still ``sending`` are written: ``bulk_update`` runs its UPDATE
        on this queryset, so the status guard holds for each row.
        """
        return self.sending().bulk_update(list(rows), OUTCOME_FIELDS)
