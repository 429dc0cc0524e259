"""Send logged messages again: the service behind the mail log's "Resend" action.

Each resend goes through :func:`mailops.services.send_test_mail` with
trigger ``resend``, so every attempt is a new ``MailLog`` row and the
originals stay as they were. Rows are grouped by (mailer, subject, body):
each group becomes one new batch, sent through the original mailer with the
original subject and body to the original recipient (the address recorded
in the row, not the user's current one). Usually a selection is one group,
so one resend run is one new batch.

Rows logged "in doubt" (the server may have accepted them: the connection
failed after the whole message was sent) are resent only when the caller
says so explicitly (``include_in_doubt``), so a resend does not duplicate
a message the recipient already has by accident.

Not resent: ``rejected`` rows (there was no valid address), rows still
``queued``/``sending`` (resending would duplicate a message on its way),
connection checks (no message was sent), and site mail whose body was not
stored (``MAILOPS["STORE_SITE_MAIL_BODY"]`` off: resending would send an
empty message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Max, Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.models import ACCEPTED_STATUSES, MailLog, MailStatus, MailTrigger
from mailops.recipients import Recipient, check_address
from mailops.redaction import redact
from mailops.sending.batches import plan_delivery, send_test_mail
from mailops.sending.summary import DeliveryPlan, SendSummary
from mailops.suppression.selection import suppressed_rows

RESENDABLE = frozenset(ACCEPTED_STATUSES | {MailStatus.FAILED})

# Why a row is not resent, by status.
NOT_RESENT: dict[str, str | Promise] = {
    MailStatus.REJECTED: gettext_lazy("rejected (no valid address)"),
    MailStatus.QUEUED: gettext_lazy("still being delivered"),
    MailStatus.SENDING: gettext_lazy("still being delivered"),
    MailStatus.CHECKED: gettext_lazy("connection checks (no message to resend)"),
    MailStatus.CHECK_FAILED: gettext_lazy("connection checks (no message to resend)"),
    MailStatus.SUPPRESSED: gettext_lazy("suppressed (the address is on the suppression list)"),
}

# Site mail logged without its body (mailops.audit): nothing to resend.
SITE_WITHOUT_BODY = Q(trigger=MailTrigger.SITE, body="")
NOT_RESENT_SITE = gettext_lazy(
    "site mail without a stored body (MAILOPS STORE_SITE_MAIL_BODY is off)"
)


# Why an in-doubt row is left out unless asked for.
IN_DOUBT_REASON = gettext_lazy("in doubt (the server may already have accepted it)")


@dataclass(frozen=True)
class ResendGroup:
    """Rows that share mailer, subject and body: one new batch."""

    mailer: str
    subject: str
    body: str
    count: int
    include_in_doubt: bool = False

    def originals(self, queryset: QuerySet[MailLog]) -> QuerySet[MailLog]:
        return resendable(queryset, include_in_doubt=self.include_in_doubt).filter(
            mailer=self.mailer, subject=self.subject, body=self.body
        )


def resendable(queryset: QuerySet[MailLog], *, include_in_doubt: bool) -> QuerySet[MailLog]:
    rows = queryset.filter(status__in=RESENDABLE)
    return rows if include_in_doubt else rows.exclude(in_doubt=True)


@dataclass
class ResendPlan:
    """What a resend of a selection would do, before anything is sent."""

    groups: list[ResendGroup] = field(default_factory=list)
    # reason -> number of selected rows that will not be resent
    not_resent: dict[str, int] = field(default_factory=dict)
    # The highest selected id: rows written by the resend itself never join it.
    max_pk: int | None = None
    # Selected rows that may already have been delivered (resent only if included).
    in_doubt: int = 0
    include_in_doubt: bool = False
    # Rows to resend whose address is on the suppression list: they are
    # logged as rejected, with the entry's reason, instead of being sent.
    suppressed: int = 0

    @property
    def count(self) -> int:
        return sum(group.count for group in self.groups)

    @property
    def not_resent_count(self) -> int:
        return sum(self.not_resent.values())

    def deliveries(self) -> list[tuple[ResendGroup, DeliveryPlan | None, str]]:
        """Per group: how it would be delivered, or why it cannot be (unknown mailer)."""
        result: list[tuple[ResendGroup, DeliveryPlan | None, str]] = []
        for group in self.groups:
            try:
                result.append((group, plan_delivery(group.count, using=group.mailer), ""))
            except ImproperlyConfigured as error:
                result.append((group, None, redact(str(error))))
        return result


def plan_resend(queryset: QuerySet[MailLog], *, include_in_doubt: bool = False) -> ResendPlan:
    """Group the selection and count what is not resent; six aggregate queries.

    In-doubt rows are counted in ``plan.in_doubt`` and resent only with
    ``include_in_doubt``; otherwise they are listed as not resent. Site mail
    without a stored body cannot be resent at all.
    """
    queryset = queryset.order_by()
    plan = ResendPlan(
        max_pk=queryset.aggregate(top=Max("pk"))["top"], include_in_doubt=include_in_doubt
    )
    if site_without_body := queryset.filter(SITE_WITHOUT_BODY).count():
        plan.not_resent[str(NOT_RESENT_SITE)] = site_without_body
    queryset = queryset.exclude(SITE_WITHOUT_BODY)
    for row in queryset.exclude(status__in=RESENDABLE).values("status").annotate(n=Count("pk")):
        reason = str(
            NOT_RESENT.get(row["status"], _("status %(status)r") % {"status": row["status"]})
        )
        plan.not_resent[reason] = plan.not_resent.get(reason, 0) + row["n"]
    plan.in_doubt = queryset.filter(status__in=RESENDABLE, in_doubt=True).count()
    if plan.in_doubt and not include_in_doubt:
        plan.not_resent[str(IN_DOUBT_REASON)] = plan.in_doubt
    groups = (
        resendable(queryset, include_in_doubt=include_in_doubt)
        .values("mailer", "subject", "body")
        .annotate(n=Count("pk"))
        .order_by("mailer", "subject")
    )
    plan.groups = [
        ResendGroup(
            mailer=g["mailer"],
            subject=g["subject"],
            body=g["body"],
            count=g["n"],
            include_in_doubt=include_in_doubt,
        )
        for g in groups
    ]
    if plan.groups:
        to_resend = resendable(queryset, include_in_doubt=include_in_doubt)
        plan.suppressed = suppressed_rows(to_resend).count()
    return plan


@dataclass
class ResendOutcome:
    group: ResendGroup
    summary: SendSummary | None = None
    # Why the group was not sent (its mailer is no longer configured, ...).
    error: str = ""


def resend_logs(
    queryset: QuerySet[MailLog], *, triggered_by: Any = None, plan: ResendPlan | None = None
) -> list[ResendOutcome]:
    """Resend the resendable rows of ``queryset``: one new batch per group.

    A group whose mailer is no longer configured is reported, not raised,
    so the other groups still go out.
    """
    plan = plan or plan_resend(queryset)
    queryset = queryset.exclude(SITE_WITHOUT_BODY)
    if plan.max_pk is not None:
        queryset = queryset.filter(pk__lte=plan.max_pk)
    outcomes = []
    for group in plan.groups:
        outcome = ResendOutcome(group=group)
        try:
            outcome.summary = send_test_mail(
                _recipients(group.originals(queryset)),
                using=group.mailer,
                trigger=MailTrigger.RESEND,
                triggered_by=triggered_by,
                subject=group.subject,
                body=group.body,
            )
        except ImproperlyConfigured as error:
            # Raised before any row is written (unknown or broken mailer).
            outcome.error = redact(str(error))
        outcomes.append(outcome)
    return outcomes


def _recipients(originals: QuerySet[MailLog]) -> Iterator[Recipient]:
    rows = originals.order_by("pk").values_list("recipient", "user_id")
    for address, user_id in rows.iterator(chunk_size=2000):
        yield Recipient(address=address, user_id=user_id, error=check_address(address))
