"""A row's outcome, set in memory by the send loop: sent, failed, queued again for a retry."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.conf import get_setting
from mailops.mailers.errors import Failure
from mailops.models import MailLog, MailStatus

logger = logging.getLogger("mailops.delivery")

# What an in-doubt row's error starts with when the site's language is English.
# Nothing detects in-doubt rows by this text (they carry ``in_doubt``); tests
# and the English docs quote it.
IN_DOUBT_PREFIX = "in doubt: "


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` attempts: base, 2x, 4x, ..."""
    return timedelta(seconds=get_setting("RETRY_BACKOFF") * 2 ** max(0, attempts - 1))


def retry_reason(failure: Failure, retry_at: datetime) -> str:
    when = timezone.localtime(retry_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    return _("%(reason)s (will retry at %(when)s)") % {"reason": failure.reason, "when": when}


def retry_at(failure: Failure, *, attempts: int, retry: bool, now: datetime) -> datetime | None:
    """When a row that failed its ``attempts``-th try goes again; ``None``: it fails now.

    The one retry rule, for a row (:func:`record_failure`) and for the rows
    a dead mailer leaves untried (``delivery._fail_remaining``): a transient
    failure, not in doubt, with attempts left, when a later run will come.
    """
    if (
        retry
        and failure.transient
        and not failure.in_doubt
        and attempts < get_setting("MAX_ATTEMPTS")
    ):
        return now + backoff(attempts)
    return None


def final_reason(failure: Failure, *, attempts: int) -> str:
    """A failed row's error: the failure's reason, and how many tries it took."""
    if attempts <= 1:
        return failure.reason
    return ngettext(
        "%(reason)s (after %(count)d attempt)", "%(reason)s (after %(count)d attempts)", attempts
    ) % {"reason": failure.reason, "count": attempts}


def record_failure(row: MailLog, failure: Failure, *, retry: bool = False) -> None:
    """A transient failure with attempts left goes back to the queue; others fail."""
    now = timezone.now()
    row.smtp_code = failure.smtp_code
    row.updated_at = now
    when = retry_at(failure, attempts=row.attempts, retry=retry, now=now)
    if when is not None:
        row.set_status(MailStatus.QUEUED)
        row.next_attempt_at = when
        row.error = retry_reason(failure, when)
        logger.info("mail to %s via %s will be retried: %s", row.recipient, row.mailer, row.error)
        return
    row.set_status(MailStatus.FAILED)
    row.in_doubt = failure.in_doubt
    row.next_attempt_at = None
    row.error = final_reason(failure, attempts=row.attempts)
    logger.warning("mail to %s via %s failed: %s", row.recipient, row.mailer, row.error)


def mark_sent(row: MailLog, *, esp_message_id: str) -> None:
    row.set_status(MailStatus.SENT)
    row.error = ""
    row.smtp_code = None
    row.next_attempt_at = None
    row.sent_at = timezone.now()
    row.esp_message_id = esp_message_id
    row.updated_at = row.sent_at
