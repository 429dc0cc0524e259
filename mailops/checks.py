"""System checks: mail configuration mistakes surface in ``manage.py check``.

Every check reads ``settings.MAILERS`` and ``settings.MAILOPS`` as data;
nothing here opens a connection (``sendtestmail --check`` does that). Ids:

========  ==========================================================
E001      an alias named by a ``MAILOPS`` setting is not in MAILERS
E002      a mailer's BACKEND cannot be imported
E003      an SMTP mailer has no host
E004      an SMTP mailer turns on both STARTTLS and implicit TLS
E005      a Gmail mailer lacks a user or a 16-letter App Password
E006      a mailer cannot be built (unknown option, missing API key)
W001      an SMTP host looks like a misspelled well-known host
W002      port 587 without STARTTLS
W003      port 465 without implicit TLS
W004      a password sent to a remote server without TLS
W005      an SMTP mailer without a timeout
W006      a Gmail mailer whose From is not the signed-in account
W007      DEBUG on while a mailer delivers real mail
W008      an unknown key in ``MAILOPS``
E010      ``MAILOPS['DNS_NAMESERVERS']`` is not a list of ip[:port]
E011      ``MAILOPS['DKIM_SELECTORS']`` is not ``{alias: [selector, ...]}``
E012      ``MAILOPS['DNS_TIMEOUT']`` is not a positive number
E020      (deploy) tracking webhooks mounted without ``ANYMAIL['WEBHOOK_SECRET']``
========  ==========================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

from mailops.conf import DEFAULTS, get_setting
from mailops.deliverability.checks import check_doctor_settings
from mailops.mailers.config_checks import SILENCE, check_mailers
from mailops.mailers.info import (
    MailerInfo,
    configured_mailers,
    mailers_setting,
)
from mailops.tracking.checks import check_tracking_webhooks


def register_checks() -> None:
    """Register the checks (called from ``MailopsConfig.ready``)."""
    for check in (
        check_mailops_settings,
        check_mailers,
        check_debug_with_real_mailers,
        check_doctor_settings,
    ):
        checks.register(check, checks.Tags.mail, "mailops")
    checks.register(check_tracking_webhooks, checks.Tags.security, "mailops", deploy=True)


# --- MAILOPS settings -------------------------------------------------------


def check_mailops_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 (alias named by MAILOPS not in MAILERS) and W008 (unknown MAILOPS key)."""
    messages: list[checks.CheckMessage] = []
    defined = mailers_setting()
    known = ", ".join(sorted(defined)) or "(none)"

    def missing(alias: Any, where: str) -> None:
        if alias in defined:
            return
        messages.append(
            checks.Error(
                f"{where} names mailer {alias!r}, which MAILERS does not define "
                f"(defined: {known}).",
                hint=f"Add {alias!r} to MAILERS (in the reference project: "
                f"MAILER_{str(alias).upper()}_URL=...), or change {where} to a defined alias.",
                id="mailops.E001",
            )
        )

    missing(get_setting("DEFAULT_MAILER"), "MAILOPS['DEFAULT_MAILER']")
    for setting in ("FROM_EMAILS", "THROTTLE"):
        value = get_setting(setting)
        for alias in value if isinstance(value, dict) else ():
            missing(alias, f"MAILOPS[{setting!r}][{alias!r}]")

    configured = getattr(settings, "MAILOPS", {}) or {}
    for name in configured:
        if name not in DEFAULTS:
            close = difflib.get_close_matches(str(name), DEFAULTS, n=1)
            suggestion = f"Did you mean {close[0]!r}? " if close else ""
            messages.append(
                checks.Warning(
                    f"MAILOPS has an unknown key {name!r}; mailops ignores it.",
                    hint=f"{suggestion}Known keys: {', '.join(sorted(DEFAULTS))}.",
                    id="mailops.W008",
                )
            )
    return messages


# --- DEBUG ---------------------------------------------------------------------


def check_debug_with_real_mailers(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W007: DEBUG is on while a mailer can reach real inboxes."""
    if not settings.DEBUG:
        return []
    real = [info for info in configured_mailers() if info.delivers_real_mail]
    if not real:
        return []
    return [
        checks.Warning(
            f"DEBUG is on and {_listing(real)} deliver{'s' if len(real) == 1 else ''} "
            "real mail. On a server, DEBUG error pages show settings and tracebacks to "
            "anyone; on a development machine, test mail reaches real inboxes.",
            hint="In production turn DEBUG off. For development point these mailers at "
            "console://, file:///path or a mail catcher on 127.0.0.1. "
            + SILENCE.format(id="mailops.W007"),
            id="mailops.W007",
        )
    ]


def _listing(infos: Sequence[MailerInfo]) -> str:
    names = ", ".join(f"{info.alias!r} ({info.describe()})" for info in infos)
    return f"mailer{'s' if len(infos) > 1 else ''} {names}"
