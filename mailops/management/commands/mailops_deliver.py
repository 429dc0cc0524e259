"""``manage.py mailops_deliver``: a delivery worker that needs no task queue."""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.conf import get_setting
from mailops.management.migrations_check import require_mailops_migrated
from mailops.management.progress_meter import ProgressMeter, meter_for
from mailops.models import MailLog
from mailops.sending.delivery import DeliveryReport, deliver_batch
from mailops.sending.progress import BatchProgress, batch_progress, queue_progress
from mailops.sending.recovery import recover_stale_sending

EXIT_FAILED = 1
EXIT_USAGE = 2


class Command(BaseCommand):
    help = (
        "Deliver queued mail-log rows that are due (every batch, or one), retrying "
        "transient failures with backoff. Run it from cron or a service manager when "
        "no task worker is configured; several may run at once (rows are claimed "
        "atomically). --recover first settles rows a dead worker left in 'sending'."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", metavar="BATCH_ID", help="Deliver only this batch.")
        parser.add_argument(
            "--recover",
            action="store_true",
            help="First settle rows stuck in 'sending' past MAILOPS['SENDING_LEASE'] and "
            "report them: never attempted ones are requeued, accepted ones marked sent, "
            "the one on the wire per connection failed as 'in doubt' (needs review). "
            "Every delivery run does this by itself; this option reports it.",
        )
        parser.add_argument(
            "--requeue-stale",
            action="store_true",
            help="With --recover: requeue the in-doubt rows too (may send a message twice).",
        )
        parser.add_argument(
            "--lease", type=int, metavar="SECONDS", help="Override MAILOPS['SENDING_LEASE']."
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Keep running until no row of the scope waits for a retry (sleeps "
            "until the next is due). Shows progress on stderr when many rows are due.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_mailops_migrated()
        batch_id = None
        if options["batch"]:
            try:
                batch_id = uuid.UUID(options["batch"])
            except ValueError:
                raise CommandError(
                    _("--batch: %(value)r is not a batch id.") % {"value": options["batch"]},
                    returncode=EXIT_USAGE,
                ) from None
        if options["requeue_stale"] and not options["recover"]:
            raise CommandError(_("--requeue-stale needs --recover."), returncode=EXIT_USAGE)
        if options["recover"]:
            recovered = recover_stale_sending(
                lease=options["lease"], requeue=options["requeue_stale"]
            )
            if recovered.total or options["verbosity"] >= 1:
                self.stdout.write(
                    ngettext(
                        "%(total)d row stuck in 'sending': %(requeued)d requeued, %(sent)d "
                        "sent, %(in_doubt)d in doubt (failed, needs review).",
                        "%(total)d rows stuck in 'sending': %(requeued)d requeued, %(sent)d "
                        "sent, %(in_doubt)d in doubt (failed, needs review).",
                        recovered.total,
                    )
                    % {
                        "total": recovered.total,
                        "requeued": recovered.requeued,
                        "sent": recovered.sent,
                        "in_doubt": recovered.in_doubt,
                    }
                )

        totals: dict[str, int] = {}
        meter = self._meter(batch_id, options)

        def show(report: DeliveryReport) -> None:
            if meter is None:
                return
            progress = self._progress(batch_id, _added(totals, report.counts))
            if progress is not None:
                meter.show(progress)

        while True:
            report = deliver_batch(
                batch_id,
                chunk_size=get_setting("DELIVERY_CHUNK_SIZE"),
                retry=True,
                progress=show if meter is not None else None,
            )
            totals = _added(totals, report.counts)
            next_due = self._next_due(batch_id)
            if not options["wait"] or next_due is None:
                break
            # Say what it waits for (rows held for a retry or a quota) before sleeping.
            show(DeliveryReport())
            time.sleep(max(0.0, min(60.0, next_due)))
        if meter is not None:
            meter.finish(self._progress(batch_id, totals))

        sent, failed = totals.get("sent", 0), totals.get("failed", 0)
        # Quiet at -v 0 unless something failed: cron mails its owner every output.
        if options["verbosity"] >= 1 or failed:
            self.stdout.write(_summary(sent, failed, totals.get("queued", 0)))
        if failed:
            raise CommandError(
                ngettext(
                    "%(count)d message failed; the reason is in the mail log.",
                    "%(count)d messages failed; the reasons are in the mail log.",
                    failed,
                )
                % {"count": failed},
                returncode=EXIT_FAILED,
            )

    def _meter(self, batch_id: uuid.UUID | None, options: dict[str, Any]) -> ProgressMeter | None:
        """With --wait, a progress line on stderr when more than a few rows are due.

        Not without --wait: a run from cron must not mail its operator a
        progress log every minute.
        """
        if not options["wait"] or options["verbosity"] == 0:
            return None
        start = self._progress(batch_id, {})
        if start is None or start.queued + start.sending <= get_setting("ASYNC_THRESHOLD"):
            return None
        return meter_for(self)

    @staticmethod
    def _progress(batch_id: uuid.UUID | None, done: dict[str, int]) -> BatchProgress | None:
        """One batch as a whole, or this run's outcomes plus every row still to go."""
        if batch_id is not None:
            return batch_progress(batch_id)
        return queue_progress(done)

    def _next_due(self, batch_id: uuid.UUID | None) -> float | None:
        """Seconds until the first waiting row is due, or ``None`` if none waits."""
        waiting = MailLog.objects.queued()
        if batch_id is not None:
            waiting = waiting.for_batch(batch_id)
        first = waiting.aggregate(first=Min("next_attempt_at"))["first"]
        if first is None:
            return 0.0 if waiting.exists() else None
        return (first - timezone.now()).total_seconds()


def _summary(sent: int, failed: int, queued: int) -> str:
    """``3 sent, 1 failed, 2 waiting for a retry or a daily quota.``"""
    values = {"sent": sent, "failed": failed, "queued": queued}
    if queued:
        return (
            _("%(sent)d sent, %(failed)d failed, %(queued)d waiting for a retry or a daily quota.")
            % values
        )
    return _("%(sent)d sent, %(failed)d failed.") % values


def _added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {status: a.get(status, 0) + b.get(status, 0) for status in {*a, *b}}
