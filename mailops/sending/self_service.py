"""A user's "send me a test mail", held to a per-user limit that concurrent requests cannot pass.

The limit (``SELF_SERVICE_LIMIT`` per ``SELF_SERVICE_WINDOW`` seconds) is
counted from the mail log. Counting and writing the new row happen in one
transaction that first locks the user's row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so twelve
requests at once send exactly the allowed number. Delivery happens after
the commit: the lock is held for two short queries, never for an SMTP
conversation. A refusal is a ``rejected`` row too, so the log shows every
attempt; refusals do not count against the limit.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.utils import timezone

from mailops.conf import get_setting
from mailops.models import MailLog, MailLogQuerySet, MailStatus, MailTrigger, batch_values
from mailops.recipients import from_users
from mailops.sending.batches import _deliver, _template, _validate
from mailops.sending.rows import write_rows
from mailops.sending.summary import SendSummary
from mailops.suppression.selection import mark_suppressed

LIMIT_REASON = "self-service limit reached: {used} of {limit} test mails in the last {window} s"


def self_service_sends(user: Any) -> MailLogQuerySet:
    """Every self-service row the user triggered (refusals included)."""
    return MailLog.objects.filter(trigger=MailTrigger.SELF_SERVICE, triggered_by=user)


def counted_sends(user: Any, *, window: int) -> MailLogQuerySet:
    """The rows that use up the user's allowance: not ``rejected`` (nothing was sent)."""
    since = timezone.now() - timedelta(seconds=window)
    return self_service_sends(user).filter(created_at__gt=since).exclude(status=MailStatus.REJECTED)


def send_self_service_mail(user: Any, *, using: str | None = None) -> SendSummary:
    """Send the test mail to ``user``'s own address, unless over the limit.

    Over the limit, nothing is sent, a ``rejected`` row says why and
    ``summary.limited`` is set.
    """
    limit = int(get_setting("SELF_SERVICE_LIMIT"))
    window = int(get_setting("SELF_SERVICE_WINDOW"))
    trigger = MailTrigger.SELF_SERVICE
    alias, subject, body = _validate(trigger, using, None, None)
    template = _template(alias, uuid.uuid4(), subject, body, trigger, user)
    summary = SendSummary(mailer=alias, batch_id=template.batch_id)
    users = get_user_model()._default_manager.filter(pk=user.pk)
    # A suppressed address is rejected with its reason, as for any test mail.
    recipients = list(mark_suppressed(from_users(users)))
    db = router.db_for_write(MailLog)
    with transaction.atomic(using=db):
        # Requests of one user wait here for each other; other users do not.
        list(users.using(db).select_for_update().values_list("pk", flat=True))
        used = counted_sends(user, window=window).count()
        if used >= limit:
            MailLog.objects.create(
                **batch_values(template),
                batch_id=template.batch_id,
                status=MailStatus.REJECTED,
                recipient=recipients[0].address if recipients else "",
                user_id=user.pk,
                error=LIMIT_REASON.format(used=used, limit=limit, window=window),
            )
            summary.limited = True
            summary.counts = {MailStatus.REJECTED: 1}
            return summary
        queued = write_rows(template, recipients, rejected_out=summary.invalid)
    summary.suppressed = sum(r.suppressed for r in summary.invalid)
    if queued:
        _deliver(summary, queued, queue=False)
    summary.counts = summary.logs().status_counts()
    return summary
