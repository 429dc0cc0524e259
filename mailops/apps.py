from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailopsConfig(AppConfig):
    name = "mailops"
    verbose_name = _("Mail operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, tracking
        from .arrival import checks as arrival_checks

        # manage.py check: mailer configuration mistakes (mailops.E0xx/W0xx).
        checks.register_checks()
        # ... and the proof-of-arrival mailboxes (mailops.E030/E031/W030).
        arrival_checks.register()

        # Provider webhooks -> MailEvent rows and delivery statuses.
        tracking.connect_signals()
