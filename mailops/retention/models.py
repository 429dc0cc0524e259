"""The mail log's daily history (``MailDailyCount``), kept when its rows are purged."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class MailDailyCount(models.Model):
    """How many rows one day held, per mailer, trigger and status: the log's history.

    ``purgemaillog`` writes these for every day it reaches *before* deleting
    that day's rows (``mailops.retention.history``), so the chart, the
    summary and ``/mail/metrics`` give the same numbers after a purge. Days
    are local dates in the site's time zone. Each such day also gets one
    marker row (mailer, trigger and status empty, count 0): the day is
    *closed*, its counts are read here and no longer from the rows.
    """

    day = models.DateField(_("day"))
    mailer = models.CharField(_("mailer"), max_length=64, blank=True)
    trigger = models.CharField(_("trigger"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=16, blank=True)
    count = models.BigIntegerField(_("messages"), default=0)

    class Meta:
        verbose_name = _("daily message count")
        verbose_name_plural = _("daily message counts")
        ordering = ["day", "mailer", "trigger", "status"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "mailer", "trigger", "status"], name="maildailycount_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.mailer} {self.trigger} {self.status}: {self.count}"
