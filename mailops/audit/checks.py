"""The site-mail audit's system check: ``mailops.W014``.

Under ``MAILERS``, every connection Django makes comes from the mailers
handler, where the audit is hooked. Under the classic ``EMAIL_*`` settings,
Django 6.1 builds the connection of ``send_mail()``, ``mail_admins()`` and
``EmailMessage.send()`` without ``using=`` in the deprecated
``get_connection()``, outside the handler: those sends are not logged. (The
audit could only reach them by wrapping ``get_connection()`` itself, and
Django would then report each call as deprecated use by mailops.)
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.translation import gettext as _

from mailops.conf import get_setting
from mailops.mailers.registry import uses_classic_settings
from mailops.mailers.tls_checks import SILENCE


def check_audit_sees_the_site_mail(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W014: the audit is on, but the classic settings route most sends around it."""
    if not (get_setting("AUDIT_ALL_MAIL") and uses_classic_settings()):
        return []
    return [
        checks.Warning(
            _(
                "MAILOPS['AUDIT_ALL_MAIL'] is on, but without MAILERS Django builds the "
                "connection of send_mail(), mail_admins() and EmailMessage.send() (without "
                "using=) in the deprecated get_connection(), outside the mailers the audit "
                "watches: only sends through mail.mailers['default'] or using='default' are "
                "logged."
            ),
            hint=_(
                "Move the EMAIL_* settings to MAILERS (see 'Using mailops with classic "
                "EMAIL_* settings' in the docs); then every send is logged."
            )
            + " "
            + SILENCE.format(id="mailops.W014"),
            id="mailops.W014",
        )
    ]
