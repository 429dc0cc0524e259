"""Deliver queued rows over a mailer's connections and record each outcome.

``EmailBackend.send_messages()`` stops at the first message that raises, so
delivery claims rows in chunks and hands the backend one message at a time
(:mod:`mailops.sending.session`): every row gets its own outcome, and a
dropped connection is re-opened (or, if that fails, the rest are failed
with the reason). With ``concurrency`` above one, that many connections
send each chunk in parallel threads. Claims and outcomes are written a
chunk at a time, here or, on PostgreSQL, one chunk ahead in a thread of
their own (:mod:`mailops.sending.bookkeeping`).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.mail import InvalidMailer
from django.db import DatabaseError, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mailops.conf import get_setting, stored_language
from mailops.mailers.errors import Failure
from mailops.models import MailLog, MailLogQuerySet, MailStatus
from mailops.redaction import redact
from mailops.sending.bookkeeping import AheadBookkeeping, Bookkeeping
from mailops.sending.chunk_sender import ChunkSender
from mailops.sending.outcomes import final_reason, retry_at, retry_reason
from mailops.sending.pending import unwritten_batches, write_pending_rows
from mailops.sending.recovery import Recovered, recover_stale_sending
from mailops.sending.strategy import Strategy
from mailops.sending.throttle import RateLimiter, quota_status, rate_for
from mailops.sending.wire import forget_progress

logger = logging.getLogger("mailops.delivery")


@dataclass
class DeliveryReport:
    """What one delivery run did, by status (``queued`` = waiting for a retry or quota)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, status: str, n: int = 1) -> None:
        self.counts[status] = self.counts.get(status, 0) + n


def due_rows(
    batch_id: uuid.UUID | str | None = None, *, now: datetime | None = None
) -> MailLogQuerySet:
    """Queued rows whose time has come (of one batch, or of every batch)."""
    now = now or timezone.now()
    rows = MailLog.objects.queued().filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    return rows if batch_id is None else rows.for_batch(batch_id)


def claim(batch_id: uuid.UUID | str | None, *, mailer: str, limit: int) -> list[MailLog]:
    """Atomically move up to ``limit`` due queued rows to ``sending``; return them.

    The conditional UPDATE is what makes the claim safe on every database:
    a row another worker took first no longer matches ``status=queued``, so
    it is not claimed twice; the token tells us which rows are ours. On
    PostgreSQL, ``SELECT ... FOR UPDATE SKIP LOCKED`` also lets concurrent
    workers pick disjoint rows instead of racing for the same ones.
    """
    token = uuid.uuid4().hex
    candidates_qs = due_rows(batch_id).filter(mailer=mailer).order_by("pk")
    db = router.db_for_write(MailLog)
    if connections[db].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=db, savepoint=False):
            locked = candidates_qs.select_for_update(skip_locked=True)
            candidates = list(locked.values_list("pk", flat=True)[:limit])
            if not candidates:
                return []
            chunk = MailLog.objects.by_pks(candidates)
            chunk.claim(token)
            return list(chunk.claimed_by(token).order_by("pk"))
    else:
        # One statement (UPDATE ... WHERE id IN (SELECT ... LIMIT n)): SQLite
        # takes the write lock at once, so a second worker waits for it
        # instead of failing with "database is locked" when a deferred
        # transaction that has read tries to write.
        picked = candidates_qs.values("pk")[:limit]
        if not MailLog.objects.filter(pk__in=picked).claim(token):
            return []
    return list(MailLog.objects.claimed_by(token).order_by("pk"))


def deliver_batch(
    batch_id: uuid.UUID | str | None,
    *,
    chunk_size: int = 100,
    retry: bool = False,
    rate_share: int = 1,
    concurrency: int = 1,
    progress: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Deliver every due queued row of ``batch_id`` (``None``: of every batch).

    ``concurrency`` connections per mailer (in as many threads; they share
    the mailer's rate limit). With ``retry``, transient failures go back to
    ``queued`` with a ``next_attempt_at`` (exponential backoff) until
    ``MAX_ATTEMPTS``; a later run must then pick them up, so callers pass
    ``retry=True`` only when one will. ``rate_share`` divides each mailer's
    rate limit among that many parallel delivery runs. ``progress``, if
    given, is called with the report so far once each chunk's outcomes are
    in the log (for a progress display), and never while an outcome write
    is on its way: the log's unfinished rows and the report then add up to
    every row, each counted once.
    """
    # The reasons written into rows are in the site's language (see stored_language): an
    # admin's request that delivers inline must not write them in its own.
    with stored_language():
        return _deliver_batch(
            batch_id,
            chunk_size=chunk_size,
            retry=retry,
            rate_share=rate_share,
            concurrency=concurrency,
            progress=progress,
        )


def _deliver_batch(
    batch_id: uuid.UUID | str | None,
    *,
    chunk_size: int,
    retry: bool,
    rate_share: int,
    concurrency: int,
    progress: Callable[[DeliveryReport], None] | None,
) -> DeliveryReport:
    report = DeliveryReport()
    # A dead worker's rows whose lease ran out: unattempted ones go out again below.
    try:
        recovered = recover_stale_sending(batch_id=batch_id)
    except DatabaseError:
        # (A deadlock with a stalled worker, say.) The next run recovers them;
        # this one's own rows need not wait for that.
        logger.exception("could not recover rows a stopped worker left in 'sending'")
        recovered = Recovered()
    if recovered.total:
        logger.warning(
            "recovered %d row(s) a stopped worker left in 'sending': %d requeued, %d sent, "
            "%d in doubt",
            recovered.total,
            recovered.requeued,
            recovered.sent,
            recovered.in_doubt,
        )
    # Rows of a large selection that the request left for a worker to write.
    for pending in [batch_id] if batch_id is not None else unwritten_batches():
        try:
            write_pending_rows(pending)
        except DatabaseError:
            # One batch that cannot be written must not hold up every other
            # batch's delivery; its rows written so far still go out.
            logger.exception("could not write the rows of batch %s", pending)
    aliases = due_rows(batch_id).order_by().values_list("mailer", flat=True).distinct()
    strategy = Strategy.for_run()
    for alias in list(aliases):
        _deliver_for_mailer(
            batch_id,
            alias,
            chunk_size=chunk_size,
            retry=retry,
            rate_share=rate_share,
            concurrency=concurrency,
            report=report,
            progress=progress,
            strategy=strategy,
        )
    return report


def _deliver_for_mailer(
    batch_id: uuid.UUID | str | None,
    alias: str,
    *,
    chunk_size: int,
    retry: bool,
    rate_share: int,
    concurrency: int = 1,
    report: DeliveryReport,
    progress: Callable[[DeliveryReport], None] | None = None,
    strategy: Strategy | None = None,
) -> None:
    """One mailer's share of a run: pace, connect, claim and send chunk by chunk, settle."""
    strategy = strategy or Strategy.for_run()
    rate, chunk_size = _pace(alias, rate_share=rate_share, chunk_size=chunk_size)
    try:
        sender = ChunkSender(
            alias,
            concurrency=concurrency,
            retry=retry,
            limiter=RateLimiter(rate),
            strategy=strategy,
        )
    except InvalidMailer as error:
        reason = redact(f"[{alias}] " + _("mailer is misconfigured: %(error)s") % {"error": error})
        _fail_remaining(batch_id, alias, Failure(reason), report, retry=False)
        return
    try:
        bookkeeping = _bookkeeping(
            batch_id, alias, chunk_size, report, progress, ahead=strategy.claim_ahead and not rate
        )
        try:
            dead = _send_chunks(sender, bookkeeping)
            if dead is not None:
                # Rows claimed ahead go back to the queue first: they fail with the rest.
                bookkeeping.close()
                _fail_remaining(batch_id, alias, dead, report, retry=retry)
        finally:
            bookkeeping.close()
    finally:
        sender.close()


def _pace(alias: str, *, rate_share: int, chunk_size: int) -> tuple[float | None, int]:
    """The run's share of the mailer's rate limit, and a chunk size that fits the lease."""
    rate = rate_for(alias)
    if not rate:
        return None, chunk_size
    rate /= max(1, rate_share)
    # A claimed chunk must be sent well within the lease, or recovery would
    # take a live worker's rows for a dead one's.
    return rate, max(1, min(chunk_size, int(rate * get_setting("SENDING_LEASE") / 2)))


def _bookkeeping(
    batch_id: uuid.UUID | str | None,
    alias: str,
    chunk_size: int,
    report: DeliveryReport,
    progress: Callable[[DeliveryReport], None] | None,
    *,
    ahead: bool,
) -> Bookkeeping:
    """Claims (within the daily quota, if any) and outcome writes that count into ``report``."""

    def written(rows: list[MailLog]) -> None:
        # Counted once the log holds them, and reported while it holds
        # exactly these: a report reads the rest as unfinished rows.
        for row in rows:
            if row.status != MailStatus.SENDING:
                report.add(row.status)
        if progress is not None:
            progress(report)

    if quota_status(alias).limit is None:
        next_chunk = functools.partial(claim, batch_id, mailer=alias, limit=chunk_size)
        kind = AheadBookkeeping if ahead else Bookkeeping
        return kind(next_chunk, _write_outcomes, written)

    def claim_within_quota() -> list[MailLog]:
        # Each chunk is sized by the outcomes so far: no claiming ahead.
        quota = quota_status(alias)
        if quota.exhausted:
            _hold_for_quota(batch_id, alias, quota.reason(), quota.frees_at, report)
            return []
        assert quota.remaining is not None
        return claim(batch_id, mailer=alias, limit=min(chunk_size, quota.remaining))

    return Bookkeeping(claim_within_quota, _write_outcomes, written)


def _send_chunks(sender: ChunkSender, bookkeeping: Bookkeeping) -> Failure | None:
    """Claim, send and write chunk after chunk until none is due; why the mailer died, if it did."""
    while rows := bookkeeping.next_chunk():
        try:
            sender.send(rows)
        finally:
            # Even when a thread crashed or the run was interrupted, what was
            # sent is written as sent; rows without an outcome stay "sending",
            # for the caller or the lease to settle.
            bookkeeping.write(rows)
        if sender.dead is not None:
            return sender.dead
    # The last chunk's outcomes, if still on their way, and their report.
    bookkeeping.flush()
    return None


def _write_outcomes(rows: list[MailLog]) -> None:
    """A chunk's outcomes; with every row settled, its progress marks are done with."""
    settled = [row for row in rows if row.status != MailStatus.SENDING]
    record_outcomes(settled)
    if rows and len(settled) == len(rows):
        forget_progress(rows[0].claimed_by)


def record_outcomes(rows: list[MailLog]) -> None:
    """Write a chunk's outcomes: the plain successes in one UPDATE, the rest row by row.

    ``bulk_update`` writes a CASE expression per field and row, which cost
    about a third of the delivery time; successes without a provider id
    all get the same values, so one ``UPDATE ... WHERE id IN (...)`` does.
    They share one ``sent_at``: when the chunk was recorded, moments after
    the server accepted each (the daily quota counts them no earlier).
    """
    plain = [row for row in rows if row.status == MailStatus.SENT and not row.esp_message_id]
    others = [row for row in rows if row.status != MailStatus.SENT or row.esp_message_id]
    # Only rows still under this run's claim: if recovery took a row from a
    # run that stalled past its lease, its outcome belongs to the new claim.
    tokens = {row.claimed_by for row in rows}

    def still_claimed(part: list[MailLog]) -> MailLogQuerySet:
        return MailLog.objects.by_pks([row.pk for row in part]).filter(claimed_by__in=tokens)

    if plain:
        now = timezone.now()
        for row in plain:
            row.sent_at = row.updated_at = now
        still_claimed(plain).mark_sent(at=now)
    if others:
        still_claimed(others).settle(others)


def _hold_for_quota(
    batch_id: uuid.UUID | str | None,
    alias: str,
    reason: str,
    frees_at: datetime | None,
    report: DeliveryReport,
) -> None:
    """Over quota: rows stay queued, saying why and from when they resume."""
    waiting = due_rows(batch_id).filter(mailer=alias)
    held = waiting.update(error=reason, next_attempt_at=frees_at, updated_at=timezone.now())
    report.add(MailStatus.QUEUED, held)


def _fail_remaining(
    batch_id: uuid.UUID | str | None,
    alias: str,
    failure: Failure,
    report: DeliveryReport,
    *,
    retry: bool,
) -> None:
    """The mailer cannot be reached: the rows not yet tried share the failure.

    Each counts as an attempt, and the same rule as for one row
    (:func:`~mailops.sending.outcomes.retry_at`) decides, by the attempts
    each row has had, whether it waits for a retry or fails.
    """
    remaining = due_rows(batch_id).filter(mailer=alias)
    now = timezone.now()
    # A few distinct counts at most: one UPDATE per count, not per row.
    for before in sorted(set(remaining.order_by().values_list("attempts", flat=True).distinct())):
        rows = remaining.filter(attempts=before)
        attempts = before + 1
        when = retry_at(failure, attempts=attempts, retry=retry, now=now)
        if when is not None:
            waiting = rows.update(
                attempts=F("attempts") + 1,
                error=retry_reason(failure, when),
                smtp_code=failure.smtp_code,
                next_attempt_at=when,
                updated_at=now,
            )
            report.add(MailStatus.QUEUED, waiting)
            continue
        reason = final_reason(failure, attempts=attempts)
        report.add(MailStatus.FAILED, rows.fail(reason, smtp_code=failure.smtp_code, attempt=True))


def fail_unfinished(batch_id: uuid.UUID, error: BaseException) -> None:
    """A crashed delivery must not leave rows looking queued forever."""
    path = f"{type(error).__module__}.{type(error).__qualname__}"
    with stored_language():
        reason = _("delivery task crashed (%(error)s); see the server log") % {"error": path}
    MailLog.objects.for_batch(batch_id).unfinished().fail(reason)
