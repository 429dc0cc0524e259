from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailopsConfig(AppConfig):
    name = "mailops"
    verbose_name = _("Mail operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mailops import checks, tracking
        from mailops.audit import hook
        from mailops.suppression import feed
        from mailops.tracking.signals import delivery_event_recorded

        # manage.py check: configuration mistakes (mailops.E0xx/W0xx).
        checks.register_checks()

        # Provider webhooks -> MailEvent rows and delivery statuses.
        tracking.connect_signals()

        # Every new delivery event (webhook or SMTP bounce) feeds the suppression list.
        delivery_event_recorded.connect(
            feed.on_delivery_event, dispatch_uid="mailops.suppression.feed"
        )

        # Every mailer instance is audited while MAILOPS["AUDIT_ALL_MAIL"] is on;
        # with it off nothing of Django is patched (see mailops/audit/hook.py).
        hook.install_when_enabled()
