"""Deliver queued rows over one mailer connection and record each outcome.

``EmailBackend.send_messages()`` stops at the first message that raises, so
the loop here opens the connection once and hands the backend one message
at a time: every row gets its own outcome, and a dropped connection is
re-opened (or, if that fails, the rest are failed with the reason).

Through Django's own SMTP backend, a batch's message is built once
(:class:`~mailops.composition.MessageTemplate`) and its bytes go over the
backend's open connection with only To and Message-ID changed per row:
building a message costs more than sending it. Other backends (anymail,
locmem, subclasses of the SMTP backend) get a full message per row.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import InvalidMailer, mailers
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from .composition import MessageTemplate, build_message
from .conf import get_setting
from .failures import Failure, describe_failure
from .models import MailLog, MailLogQuerySet, MailStatus
from .recipients import check_address
from .redaction import redact
from .throttle import RateLimiter, quota_status, rate_for

logger = logging.getLogger("mailops.delivery")

DEFAULT_MAILER_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

_OUTCOME_FIELDS = [
    "status",
    "error",
    "smtp_code",
    "sent_at",
    "esp_message_id",
    "updated_at",
    "next_attempt_at",
]


def backend_path(alias: str) -> str:
    """The dotted backend path configured for ``alias`` (for the log row)."""
    config = getattr(settings, "MAILERS", {}).get(alias, {})
    return str(config.get("BACKEND", DEFAULT_MAILER_BACKEND))


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
    with transaction.atomic(using=db, savepoint=False):
        if connections[db].features.has_select_for_update_skip_locked:
            candidates_qs = candidates_qs.select_for_update(skip_locked=True)
        candidates = list(candidates_qs.values_list("pk", flat=True)[:limit])
        if not candidates:
            return []
        MailLog.objects.filter(pk__in=candidates, status=MailStatus.QUEUED).update(
            status=MailStatus.SENDING,
            claimed_by=token,
            attempts=F("attempts") + 1,
            updated_at=timezone.now(),
        )
    return list(
        MailLog.objects.filter(
            pk__in=candidates, claimed_by=token, status=MailStatus.SENDING
        ).order_by("pk")
    )


def deliver_batch(
    batch_id: uuid.UUID | str | None,
    *,
    chunk_size: int = 100,
    retry: bool = False,
    rate_share: int = 1,
) -> DeliveryReport:
    """Deliver every due queued row of ``batch_id`` (``None``: of every batch).

    One connection per mailer. With ``retry``, transient failures go back to
    ``queued`` with a ``next_attempt_at`` (exponential backoff) until
    ``MAX_ATTEMPTS``; a later run must then pick them up, so callers pass
    ``retry=True`` only when one will. ``rate_share`` divides each mailer's
    rate limit among that many parallel delivery runs.
    """
    report = DeliveryReport()
    aliases = due_rows(batch_id).order_by().values_list("mailer", flat=True).distinct()
    for alias in list(aliases):
        _deliver_for_mailer(
            batch_id,
            alias,
            chunk_size=chunk_size,
            retry=retry,
            rate_share=rate_share,
            report=report,
        )
    return report


def _deliver_for_mailer(
    batch_id: uuid.UUID | str | None,
    alias: str,
    *,
    chunk_size: int,
    retry: bool,
    rate_share: int,
    report: DeliveryReport,
) -> None:
    try:
        backend = mailers[alias]
    except InvalidMailer as error:
        reason = redact(f"[{alias}] mailer is misconfigured: {error}")
        _fail_remaining(batch_id, alias, Failure(reason), report, retry=False)
        return
    rate = rate_for(alias)
    if rate:
        rate /= max(1, rate_share)
        # A claimed chunk must be sent well within the lease, or recovery
        # would take a live worker's rows for a dead one's.
        chunk_size = max(1, min(chunk_size, int(rate * get_setting("SENDING_LEASE") / 2)))
    session = _Session(backend, alias, retry=retry, limiter=RateLimiter(rate))
    try:
        while True:
            quota = quota_status(alias)
            if quota.exhausted:
                _hold_for_quota(batch_id, alias, quota.reason(), quota.frees_at, report)
                return
            limit = chunk_size if quota.remaining is None else min(chunk_size, quota.remaining)
            rows = claim(batch_id, mailer=alias, limit=limit)
            if not rows:
                return
            session.new_chunk()
            for row in rows:
                session.send(row)
                report.add(row.status)
            record_outcomes(rows)
            if session.dead is not None:
                _fail_remaining(batch_id, alias, session.dead, report, retry=retry)
                return
    finally:
        session.close()


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
    if plain:
        now = timezone.now()
        for row in plain:
            row.sent_at = row.updated_at = now
        MailLog.objects.filter(pk__in=[row.pk for row in plain]).update(
            status=MailStatus.SENT,
            error="",
            smtp_code=None,
            next_attempt_at=None,
            esp_message_id="",
            sent_at=now,
            updated_at=now,
        )
    if others:
        MailLog.objects.bulk_update(others, _OUTCOME_FIELDS)


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

    Each counts as an attempt. With ``retry`` and a transient failure, rows
    with attempts left wait for the next try; the others fail.
    """
    remaining = due_rows(batch_id).filter(mailer=alias)
    now = timezone.now()
    if retry and failure.transient:
        max_attempts = get_setting("MAX_ATTEMPTS")
        # Rows that still have an attempt left after this one wait for a retry.
        later = remaining.filter(attempts__lt=max_attempts - 1)
        retry_at = now + backoff(1)
        waiting = later.update(
            attempts=F("attempts") + 1,
            error=_retry_reason(failure, retry_at),
            smtp_code=failure.smtp_code,
            next_attempt_at=retry_at,
            updated_at=now,
        )
        report.add(MailStatus.QUEUED, waiting)
    failed = remaining.update(
        status=MailStatus.FAILED,
        attempts=F("attempts") + 1,
        error=failure.reason,
        smtp_code=failure.smtp_code,
        updated_at=now,
    )
    report.add(MailStatus.FAILED, failed)


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` attempts: base, 2x, 4x, ..."""
    return timedelta(seconds=get_setting("RETRY_BACKOFF") * 2 ** max(0, attempts - 1))


def _retry_reason(failure: Failure, retry_at: datetime) -> str:
    when = timezone.localtime(retry_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"{failure.reason} (will retry at {when})"


class _Session:
    """One open connection to a mailer, re-opened once after a drop."""

    def __init__(
        self, backend: Any, alias: str, *, retry: bool = False, limiter: RateLimiter | None = None
    ) -> None:
        self.backend = backend
        self.alias = alias
        self.retry = retry
        self.limiter = limiter or RateLimiter(None)
        self.is_open = False
        # Set when the connection cannot be (re)opened: the rest fail with it.
        self.dead: Failure | None = None
        # Only Django's own SMTP backend: a subclass may change what is sent.
        self.sends_bytes = type(backend) is SMTPBackend
        # Per chunk, so the Date header stays current: (subject, body, from) -> template.
        self._templates: dict[tuple[str, str, str], tuple[str, MessageTemplate] | None] = {}

    def new_chunk(self) -> None:
        self._templates.clear()

    def _open(self) -> Failure | None:
        try:
            self.backend.open()
        except Exception as error:  # noqa: BLE001 - any failure to connect is data
            failure = describe_failure(error, mailer=self.alias)
            # A half-open connection (e.g. TLS done, AUTH refused) must still QUIT.
            self.is_open = True
            self.close()
            return failure
        self.is_open = True
        return None

    def send(self, row: MailLog) -> None:
        # Rows queued from a user queryset were not validated one by one.
        invalid = check_address(row.recipient)
        if invalid:
            _record_failure(row, Failure(f"[{self.alias}] {invalid}"))
            return
        if self.dead is None and not self.is_open:
            self.dead = self._open()
        if self.dead is not None:
            _record_failure(row, self.dead, retry=self.retry)
            return
        self.limiter.wait()
        wire = self._wire_message(row)
        esp_message_id = ""
        try:
            if wire is not None:
                # What the backend's send_messages() would do, minus rebuilding the message.
                sender, data = wire
                self.backend.connection.sendmail(sender, [row.recipient], data)
                accepted = 1
            else:
                message = build_message(
                    to=row.recipient,
                    subject=row.subject,
                    body=row.body,
                    from_email=row.from_email,
                    message_id=row.message_id,
                    mailer=self.alias,
                )
                accepted = self.backend.send_messages([message])
                esp_message_id = _esp_message_id(message)
        except Exception as error:  # noqa: BLE001 - a refused message is data, not a crash
            failure = describe_failure(error, mailer=self.alias)
            _record_failure(row, failure, retry=self.retry)
            if failure.connection_lost:
                self.close()
            return
        if not accepted:
            _record_failure(row, Failure(f"[{self.alias}] the mailer accepted no message"))
            return
        row.set_status(MailStatus.SENT)
        row.error = ""
        row.smtp_code = None
        row.next_attempt_at = None
        row.sent_at = timezone.now()
        row.esp_message_id = esp_message_id
        row.updated_at = row.sent_at

    def _wire_message(self, row: MailLog) -> tuple[str, bytes] | None:
        """Envelope sender and bytes for the open SMTP connection, or ``None``: full build."""
        if not self.sends_bytes or self.backend.connection is None:
            return None
        key = (row.subject, row.body, row.from_email)
        if key not in self._templates:
            try:
                sender = self.backend.prep_address(row.from_email)
                template = MessageTemplate(
                    subject=row.subject,
                    body=row.body,
                    from_email=row.from_email,
                    mailer=self.alias,
                )
            except ValueError:
                # Bad input: the full build raises it again, and it is recorded there.
                self._templates[key] = None
            else:
                self._templates[key] = (sender, template)
        cached = self._templates[key]
        if cached is None:
            return None
        sender, template = cached
        data = template.render(to=row.recipient, message_id=row.message_id)
        return None if data is None else (sender, data)

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            try:
                self.backend.close()
            except Exception as error:  # noqa: BLE001 - a failed QUIT changes no outcome
                logger.info("closing mailer %s: %s", self.alias, redact(str(error)))


def _record_failure(row: MailLog, failure: Failure, *, retry: bool = False) -> None:
    """A transient failure with attempts left goes back to the queue; others fail."""
    now = timezone.now()
    row.smtp_code = failure.smtp_code
    row.updated_at = now
    if retry and failure.transient and row.attempts < get_setting("MAX_ATTEMPTS"):
        row.set_status(MailStatus.QUEUED)
        row.next_attempt_at = now + backoff(row.attempts)
        row.error = _retry_reason(failure, row.next_attempt_at)
        logger.info("mail to %s via %s will be retried: %s", row.recipient, row.mailer, row.error)
        return
    row.set_status(MailStatus.FAILED)
    row.next_attempt_at = None
    row.error = failure.reason
    if row.attempts > 1:
        row.error += f" (after {row.attempts} attempts)"
    logger.warning("mail to %s via %s failed: %s", row.recipient, row.mailer, row.error)


def _esp_message_id(message: Any) -> str:
    status = getattr(message, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    return str(message_id) if message_id else ""
