from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailopsConfig(AppConfig):
    name = "mailops"
    verbose_name = _("Mail operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, tracking

        # manage.py check: mailer configuration mistakes (mailops.E0xx/W0xx).
        checks.register_checks()
        # manage.py check: the deliverability doctor's settings (mailops.E010-E012).
        from .deliverability.checks import register_doctor_checks

        register_doctor_checks()

        # Provider webhooks -> MailEvent rows and delivery statuses.
        tracking.connect_signals()
