"""How far one batch has got: counts per status and what they mean.

:func:`batch_progress` reads a batch's rows in one aggregate query and
returns a :class:`BatchProgress`; the admin's batch page
(:mod:`mailops.admin.batch`), its JSON and the commands' progress lines
(:mod:`mailops.management.progress_meter`) all show that.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db.models import CharField, Count, Max, Min, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.models import (
    ACCEPTED_STATUSES,
    UNFINISHED_STATUSES,
    ArrivalStatus,
    MailLog,
    MailStatus,
    MailTrigger,
)
from mailops.sending.pending import unwritten_batch, unwritten_rows

# Statuses a statistic of the page stands for ("sent" is everything the mailer accepted).
_GROUPS: dict[str, tuple[str, ...]] = {
    "queued": (MailStatus.QUEUED,),
    "sending": (MailStatus.SENDING,),
    "sent": tuple(ACCEPTED_STATUSES),
    "failed": (MailStatus.FAILED,),
    # Never attempted: refused before sending, or (site mail) a suppressed address.
    "rejected": (MailStatus.REJECTED, MailStatus.SUPPRESSED),
    "delivered": (MailStatus.DELIVERED,),
    "bounced": (MailStatus.BOUNCED,),
}
# The bar's segments, left to right: outcomes, then what is still to come.
BAR_SEGMENTS = ("sent", "failed", "rejected", "sending", "queued")
_SEGMENT_LABELS = {
    "sent": gettext_lazy("sent"),
    "failed": gettext_lazy("failed"),
    "rejected": gettext_lazy("rejected"),
    "sending": gettext_lazy("sending"),
    "queued": gettext_lazy("queued"),
}


@dataclass(frozen=True)
class Segment:
    """One coloured part of the progress bar, in percent of the batch (SVG-ready strings)."""

    key: str
    label: Any
    count: int
    x: str
    width: str


@dataclass(frozen=True)
class BatchProgress:
    """Rows of one batch (or of a delivery run) per status, and what that means.

    ``waiting`` counts queued rows held back for a retry's backoff or a daily
    quota; ``resumes_at`` is when the first of them is due.
    """

    batch_id: uuid.UUID | None
    counts: Mapping[str, int] = field(default_factory=dict)
    waiting: int = 0
    resumes_at: datetime | None = None
    mailer: str = ""
    trigger: str = ""
    triggered_by_id: Any = None
    started_at: datetime | None = None
    last_change_at: datetime | None = None
    # Rows per proof-of-arrival outcome ("pending": the mailbox is still being read).
    arrivals: Mapping[str, int] = field(default_factory=dict)

    def _count(self, group: str) -> int:
        return sum(self.counts.get(status, 0) for status in _GROUPS[group])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def queued(self) -> int:
        return self._count("queued")

    @property
    def sending(self) -> int:
        return self._count("sending")

    @property
    def sent(self) -> int:
        """Accepted by the mailer (sent, or a later provider status such as delivered)."""
        return self._count("sent")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def rejected(self) -> int:
        return self._count("rejected")

    @property
    def done(self) -> int:
        """Rows with an outcome: neither queued nor being sent."""
        return self.total - self.queued - self.sending

    @property
    def verifying(self) -> int:
        """Rows whose arrival a worker is still reading back from the mailbox."""
        return self.arrivals.get(ArrivalStatus.PENDING, 0)

    @property
    def finished(self) -> bool:
        return not (self.queued or self.sending or self.verifying)

    @property
    def percent(self) -> int:
        """Share of rows with an outcome, rounded down (100 only when finished)."""
        return self.done * 100 // self.total if self.total else 100

    @property
    def state(self) -> str:
        if self.finished:
            return "finished"
        if self.verifying and not (self.queued or self.sending):
            return "verifying"
        if not self.sending and self.queued == self.waiting:
            return "waiting"
        return "in_progress"

    @property
    def state_label(self) -> str:
        return {
            "finished": _("Finished"),
            "verifying": _("Sent; reading the mailbox back"),
            "waiting": _("Waiting for a retry or the daily quota"),
            "in_progress": _("In progress"),
        }[self.state]

    @property
    def trigger_label(self) -> str:
        labels = dict(MailTrigger.choices)
        return str(labels.get(self.trigger, self.trigger))

    @property
    def arrival_text(self) -> str:
        """``"arrived in the inbox: 1"``, one part per outcome, or ``""`` when never verified."""
        labels = dict(ArrivalStatus.choices)
        return ", ".join(
            f"{str(labels.get(key, key)).lower()}: {count}"
            for key, count in sorted(self.arrivals.items())
            if count
        )

    def segments(self) -> list[Segment]:
        """The bar's parts, each ``x``/``width`` a percentage of the whole batch."""
        result = []
        offset = 0.0
        for key in BAR_SEGMENTS:
            count = self._count(key)
            width = count * 100 / self.total if self.total else 0.0
            result.append(
                Segment(
                    key=key,
                    label=_SEGMENT_LABELS[key],
                    count=count,
                    x=f"{offset:.3f}%",
                    width=f"{width:.3f}%",
                )
            )
            offset += width
        return result

    def line(self, width: int = 20) -> str:
        """``[#####.....] 523/1000 sent 510, failed 13`` for a terminal or a log."""
        filled = self.done * width // self.total if self.total else width
        text = (
            f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
            f"sent {self.sent}, failed {self.failed}"
        )
        if self.rejected:
            text += f", rejected {self.rejected}"
        if self.waiting:
            text += f", waiting {self.waiting}"
            if self.resumes_at is not None:
                text += f" (until {timezone.localtime(self.resumes_at):%H:%M:%S})"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The JSON the page polls: numbers, the bar, and display strings."""
        return {
            "batch_id": str(self.batch_id) if self.batch_id else None,
            "total": self.total,
            "done": self.done,
            "percent": self.percent,
            "finished": self.finished,
            "state": self.state,
            "state_label": self.state_label,
            **{group: self._count(group) for group in _GROUPS},
            "waiting": self.waiting,
            "statuses": dict(self.counts),
            "verifying": self.verifying,
            "arrivals": dict(self.arrivals),
            "arrival_text": self.arrival_text,
            "resumes_at": _iso(self.resumes_at),
            "resumes_at_display": _display(self.resumes_at),
            "started_at": _iso(self.started_at),
            "last_change_at": _iso(self.last_change_at),
            "last_change_at_display": _display(self.last_change_at),
            "segments": [
                {"key": s.key, "label": str(s.label), "count": s.count, "x": s.x, "width": s.width}
                for s in self.segments()
            ],
        }


def batch_progress(batch_id: uuid.UUID | str) -> BatchProgress | None:
    """The progress of one batch, or ``None`` when no row has that batch id."""
    batch_id = uuid.UUID(str(batch_id))
    progress = _progress_of(MailLog.objects.for_batch(batch_id), batch_id)
    pending = unwritten_batch(batch_id)
    if pending is not None:
        # Rows the worker has yet to write are queued all the same; before
        # it wrote any, the batch's facts come from what the request stored.
        counts = dict(progress.counts)
        counts[MailStatus.QUEUED] = counts.get(MailStatus.QUEUED, 0) + pending.unwritten
        progress = replace(
            progress,
            counts=counts,
            mailer=progress.mailer or pending.mailer,
            trigger=progress.trigger or pending.trigger,
            triggered_by_id=progress.triggered_by_id or pending.triggered_by_id,
            started_at=progress.started_at or pending.created_at,
        )
    return progress if progress.total else None


def queue_progress(done: Mapping[str, int], batch_id: uuid.UUID | None = None) -> BatchProgress:
    """A delivery run's progress: the outcomes it recorded plus the rows still to go.

    ``done`` is the run's counts by status (a ``DeliveryReport``); what is
    queued or sending is read from the log (of one batch, or of all), so the
    total grows when more rows are queued while the run goes on.
    """
    pending = MailLog.objects.unfinished()
    if batch_id is not None:
        pending = pending.filter(batch_id=batch_id)
    still = _progress_of(pending, batch_id)
    counts = {s: n for s, n in done.items() if s not in UNFINISHED_STATUSES and n}
    counts.update(still.counts)
    unwritten = unwritten_rows(batch_id)
    if unwritten:
        counts[MailStatus.QUEUED] = counts.get(MailStatus.QUEUED, 0) + unwritten
    return BatchProgress(
        batch_id=batch_id, counts=counts, waiting=still.waiting, resumes_at=still.resumes_at
    )


def _progress_of(rows: QuerySet[MailLog], batch_id: uuid.UUID | None) -> BatchProgress:
    """Counts per status and per arrival, plus the batch's facts, from one ``GROUP BY``.

    Every row of a batch was written from one template, so mailer, trigger
    and who started it are the same on each; ``MAX`` just picks that value.
    """
    now = timezone.now()
    grouped = (
        rows.order_by()
        .values("status", "arrival")
        .annotate(
            n=Count("*"),
            due_later=Count("pk", filter=Q(next_attempt_at__gt=now)),
            first_due=Min("next_attempt_at", filter=Q(next_attempt_at__gt=now)),
            first_created=Min("created_at"),
            last_updated=Max("updated_at"),
            mailer_alias=Max("mailer"),
            trigger_value=Max("trigger"),
            # PostgreSQL has no MAX(uuid) (a custom user model's key): compare as text.
            started_by=Max(Cast("triggered_by_id", output_field=CharField())),
        )
    )
    counts: dict[str, int] = {}
    arrivals: dict[str, int] = {}
    facts: dict[str, Any] = {}
    waiting, resumes_at = 0, None
    for row in grouped:
        counts[row["status"]] = counts.get(row["status"], 0) + row["n"]
        if row["arrival"]:
            arrivals[row["arrival"]] = arrivals.get(row["arrival"], 0) + row["n"]
        if row["status"] == MailStatus.QUEUED:
            waiting += row["due_later"]
            resumes_at = _earliest(resumes_at, row["first_due"])
        for key in ("mailer_alias", "trigger_value", "started_by"):
            facts[key] = facts.get(key) or row[key]
        facts["first_created"] = _earliest(facts.get("first_created"), row["first_created"])
        facts["last_updated"] = _latest(facts.get("last_updated"), row["last_updated"])
    return BatchProgress(
        batch_id=batch_id,
        counts=counts,
        waiting=waiting,
        resumes_at=resumes_at,
        mailer=facts.get("mailer_alias") or "",
        trigger=facts.get("trigger_value") or "",
        triggered_by_id=_user_pk(facts.get("started_by")),
        started_at=facts.get("first_created"),
        last_change_at=facts.get("last_updated"),
        arrivals=arrivals,
    )


def _user_pk(text: str | None) -> Any:
    """The triggering user's key, back from text to its own type."""
    if text is None:
        return None
    return MailLog._meta.get_field("triggered_by").target_field.to_python(text)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _display(moment: datetime | None) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else ""
