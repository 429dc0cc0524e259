"""W042: every message is logged (``AUDIT_ALL_MAIL``) and nothing ever deletes a row."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.translation import gettext as _

from mailops.conf import get_setting


def check_retention(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W042: ``AUDIT_ALL_MAIL`` on without ``RETENTION``: the log grows without end."""
    if not get_setting("AUDIT_ALL_MAIL") or get_setting("RETENTION"):
        return []
    return [
        checks.Warning(
            _(
                "MAILOPS['AUDIT_ALL_MAIL'] logs every message the site sends, and "
                "MAILOPS['RETENTION'] is empty: the mail log grows without end."
            ),
            hint=_(
                "Set MAILOPS['RETENTION'] (e.g. {'site': {'sent': 30}, '*': {'*': 365}}) "
                "and run `manage.py purgemaillog` daily (cron, or the purge_mail_log_task "
                "task). Silence with SILENCED_SYSTEM_CHECKS = ['mailops.W042'] to keep "
                "everything on purpose."
            ),
            id="mailops.W042",
        )
    ]
