"""Sending a batch: create its log rows, deliver (here or in a worker), record outcomes.

The implementation behind :mod:`mailops.services`, which is where callers
import it from.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.core.mail import mailers
from django.db import router
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from mailops import tasks
from mailops.conf import from_email_for, get_setting
from mailops.mailers.info import backend_path, resolve_mailer
from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import Recipient, from_users
from mailops.redaction import redact
from mailops.sending.composition import default_body, default_subject, message_id_domain
from mailops.sending.delivery import DeliveryReport, deliver_batch, fail_unfinished
from mailops.sending.pending import defer_user_rows
from mailops.sending.progress import BatchProgress, batch_progress
from mailops.sending.rows import (
    count_with_address,
    insert_suppressed_user_rows,
    insert_user_rows,
    unique_recipients,
    write_rows,
)
from mailops.sending.summary import DeliveryPlan, SendSummary
from mailops.sending.throttle import quota_status
from mailops.suppression.models import Suppression
from mailops.suppression.selection import mark_suppressed, without_suppressed

logger = logging.getLogger("mailops.services")

# RFC 5322 §2.1.1: no line of a message over 998 characters (and the log's column).
MAX_SUBJECT_LENGTH = 998


def plan_delivery(count: int, *, using: str | None = None, queue: bool = False) -> DeliveryPlan:
    """How :func:`send_test_mail` would deliver ``count`` messages through ``using``."""
    alias = resolve_mailer(using)
    large = queue or count > get_setting("ASYNC_THRESHOLD")
    worker = tasks.runs_elsewhere()
    return DeliveryPlan(
        mailer=alias,
        count=count,
        queued=large and worker,
        blocks=large and not worker,
        quota=quota_status(alias),
    )


def send_test_mail(
    recipients: Iterable[Recipient],
    *,
    using: str | None = None,
    trigger: str,
    triggered_by: Any = None,
    triggered_by_name: str = "",
    subject: str | None = None,
    body: str | None = None,
    abort_on_rejected: bool = False,
    dry_run: bool = False,
    queue: bool = False,
    progress: Callable[[BatchProgress], None] | None = None,
    ignore_suppression: bool = False,
) -> SendSummary:
    """Send the test mail to ``recipients`` through one mailer and log every outcome.

    Invalid recipients are logged as ``rejected``; with ``abort_on_rejected``
    one invalid entry stops the batch before anything is sent. ``dry_run``
    validates and reports what would be sent, and writes nothing. Above
    ``ASYNC_THRESHOLD`` recipients, or with ``queue``, the rows are handed
    to the task worker (if one is configured) and the call returns at once.
    ``triggered_by_name`` records who started it when there is no Django
    user (the operating-system user running a command).
    A batch delivered here calls ``progress`` (if given) with the batch's
    :class:`~mailops.sending.progress.BatchProgress` after each chunk.
    A recipient on the suppression list is logged as ``rejected`` with the
    entry's date and reason (it does not abort the batch), unless
    ``ignore_suppression``.
    """
    alias, subject, body = _validate(trigger, using, subject, body)

    unique = unique_recipients(recipients)
    if dry_run:
        planned = list(unique if ignore_suppression else mark_suppressed(unique))
        return SendSummary(
            mailer=alias,
            batch_id=None,
            planned=[r for r in planned if r.valid],
            invalid=[r for r in planned if not r.valid],
            dry_run=True,
            suppressed=sum(r.suppressed for r in planned),
        )

    batch_id = uuid.uuid4()
    template = _template(alias, batch_id, subject, body, trigger, triggered_by)
    template.triggered_by_name = triggered_by_name[:150]
    summary = SendSummary(mailer=alias, batch_id=batch_id)
    if abort_on_rejected:
        # Validate everything first: one bad entry means nothing is sent.
        entries = list(unique)
        summary.invalid = [r for r in entries if not r.valid]
        if summary.invalid:
            write_rows(template, summary.invalid)
            summary.aborted = True
            summary.counts = summary.logs().status_counts()
            return summary
        unique = iter(entries)
    if not ignore_suppression:
        # After the abort check: a suppressed address is no mistake in the input.
        unique = mark_suppressed(unique)

    queued = write_rows(template, unique, rejected_out=summary.invalid)
    summary.suppressed = sum(r.suppressed for r in summary.invalid)
    if queued:
        _deliver(summary, queued, queue=queue, progress=progress)
    if summary.handed_to_worker:
        # What was written; the worker may already be changing it.
        summary.counts = {MailStatus.QUEUED: queued, MailStatus.REJECTED: len(summary.invalid)}
    else:
        summary.counts = summary.logs().status_counts()
    return summary


def send_test_mail_to_users(
    users: QuerySet[Any],
    *,
    using: str | None = None,
    trigger: str,
    triggered_by: Any = None,
    subject: str | None = None,
    body: str | None = None,
    abort_on_rejected: bool = False,
    queue: bool = False,
    ignore_suppression: bool = False,
) -> SendSummary:
    """:func:`send_test_mail` for a user queryset, however large.

    The database writes the rows itself (``INSERT ... SELECT``), so the
    number of queries does not grow with the selection; users without an
    address become ``rejected`` rows. Addresses are checked one by one at
    delivery (an invalid one fails its row). ``summary.invalid`` stays
    empty; ``summary.rejected`` counts the rejected rows. A selection handed
    to a worker with more than ``WRITE_IN_REQUEST_LIMIT`` addressed users
    only records their ids here: the worker writes the queued rows
    (``mailops.sending.pending``), so the caller returns at once.
    Users whose address is suppressed get ``rejected`` rows written by the
    database too (``summary.suppressed`` counts them), unless
    ``ignore_suppression``; they are left out of the queued rows.
    """
    if router.db_for_write(MailLog) != users.db:
        # Rows and users in different databases: no INSERT ... SELECT.
        return send_test_mail(
            from_users(users),
            using=using,
            trigger=trigger,
            triggered_by=triggered_by,
            subject=subject,
            body=body,
            abort_on_rejected=abort_on_rejected,
            queue=queue,
            ignore_suppression=ignore_suppression,
        )
    alias, subject, body = _validate(trigger, using, subject, body)
    batch_id = uuid.uuid4()
    template = _template(alias, batch_id, subject, body, trigger, triggered_by)
    domain = message_id_domain(template.from_email)
    summary = SendSummary(mailer=alias, batch_id=batch_id)
    rejected = insert_user_rows(users, template, with_address=False, domain=domain)
    summary.counts = {MailStatus.REJECTED: rejected} if rejected else {}
    if rejected and abort_on_rejected:
        summary.aborted = True
        return summary
    # Whether the rows are written here or by a worker depends on the
    # selection's size; the few suppressed users do not change that.
    in_worker = _write_in_worker(users, queue=queue)
    if not ignore_suppression and Suppression.objects.active().exists():
        summary.suppressed = insert_suppressed_user_rows(users, template)
        if summary.suppressed:
            summary.counts[MailStatus.REJECTED] = rejected + summary.suppressed
            users = without_suppressed(users)
    if in_worker:
        queued = defer_user_rows(users, template)
    else:
        queued = insert_user_rows(users, template, with_address=True, domain=domain)
    if queued:
        summary.counts[MailStatus.QUEUED] = queued
        _deliver(summary, queued, queue=queue)
    if not summary.handed_to_worker:
        summary.counts = summary.logs().status_counts()
    return summary


def _write_in_worker(users: QuerySet[Any], *, queue: bool) -> bool:
    """Whether a worker should write the selection's rows (it will deliver them anyway)."""
    if not tasks.runs_elsewhere():
        return False
    addressed = count_with_address(users)
    limit = get_setting("WRITE_IN_REQUEST_LIMIT")
    return addressed > limit and (queue or addressed > get_setting("ASYNC_THRESHOLD"))


def _validate(
    trigger: str, using: str | None, subject: str | None, body: str | None
) -> tuple[str, str, str]:
    if trigger not in MailTrigger.values:
        raise ValueError(f"Unknown trigger {trigger!r}")
    alias = resolve_mailer(using)
    # Instantiating the backend surfaces InvalidMailer before any row is written.
    mailers[alias]
    subject = default_subject(alias) if subject is None else subject
    body = default_body(alias) if body is None else body
    if any(char in subject for char in "\r\n"):
        raise ValueError(_("The subject must be a single line."))
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise ValueError(
            _(
                "The subject is %(length)d characters long; at most %(limit)d are allowed "
                "(RFC 5322 line limit)."
            )
            % {"length": len(subject), "limit": MAX_SUBJECT_LENGTH}
        )
    return alias, subject, body


def _template(
    alias: str, batch_id: uuid.UUID, subject: str, body: str, trigger: str, triggered_by: Any
) -> MailLog:
    return MailLog(
        mailer=alias,
        backend=backend_path(alias),
        from_email=from_email_for(alias),
        subject=subject,
        body=body,
        trigger=trigger,
        triggered_by=triggered_by if getattr(triggered_by, "pk", None) else None,
        batch_id=batch_id,
    )


def _deliver(
    summary: SendSummary,
    count: int,
    *,
    queue: bool,
    progress: Callable[[BatchProgress], None] | None = None,
) -> None:
    """Hand the batch to a worker, or deliver it here and now."""
    assert summary.batch_id is not None
    batch_id = summary.batch_id
    if (queue or count > get_setting("ASYNC_THRESHOLD")) and tasks.runs_elsewhere():
        summary.handed_to_worker = True
        try:
            tasks.enqueue_delivery(batch_id, copies=get_setting("DELIVERY_CONCURRENCY"))
        except Exception as error:
            # Any broker failure: the rows are written and stay queued; `mailops_deliver` (cron)
            # or the next enqueue picks them up. The caller says so.
            logger.exception("could not hand batch %s to the task worker", batch_id)
            summary.worker_error = redact(f"{type(error).__name__}: {error}")
        return
    try:
        deliver_batch(
            batch_id,
            chunk_size=get_setting("DELIVERY_CHUNK_SIZE"),
            retry=tasks.can_defer(),
            # Here, parallel connections are threads of this run (a worker gets tasks).
            concurrency=get_setting("DELIVERY_CONCURRENCY"),
            progress=_progress_hook(batch_id, progress),
        )
    except Exception as error:
        # A bug in a backend must not leave rows looking queued forever.
        logger.exception("delivery of batch %s crashed", batch_id)
        fail_unfinished(batch_id, error)
        return
    summary.resumes_at = tasks.schedule_follow_up(batch_id)


def _progress_hook(
    batch_id: uuid.UUID, progress: Callable[[BatchProgress], None] | None
) -> Callable[[DeliveryReport], None] | None:
    """What ``deliver_batch`` calls per chunk: read the batch's progress, pass it on."""
    if progress is None:
        return None

    def hook(_report: DeliveryReport) -> None:
        current = batch_progress(batch_id)
        if current is not None:
            progress(current)

    return hook
