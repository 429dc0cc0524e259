"""Bounce reading as a django.tasks task, for a worker to run on a schedule."""

from __future__ import annotations

import logging
from typing import Any

from django.tasks import task

from mailops.bounces.run import read_mailboxes

logger = logging.getLogger("mailops.bounces")


@task
def read_bounces_task(using: str | None = None) -> list[dict[str, Any]]:
    """Read every mailer's mailbox (or mailer ``using``'s) for reports: ``mailbounces`` as a task.

    Returns each mailbox's outcome (the ``--json`` shape of ``mailbounces``);
    a mailbox that cannot be read is logged as a warning (``mailops.bounces``)
    and the others are still read.
    """
    runs = read_mailboxes(using=using, all_mailers=using is None)
    for run in runs:
        if not run.ok:
            logger.warning("mailbounces %s: %s", run.mailbox, run.failure)
    return [run.as_dict() for run in runs]
