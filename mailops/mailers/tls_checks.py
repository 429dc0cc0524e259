"""Whether an SMTP mailer's port matches its TLS mode (``mailops.W002``-``W004``, ``W013``).

Read from :class:`~mailops.mailers.info.MailerInfo`, as the other per-mailer
checks (:mod:`mailops.mailers.config_checks`); hints name the setting the
user wrote (a ``MAILERS`` option or a classic ``EMAIL_*`` setting).
"""

from __future__ import annotations

from django.core import checks
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mailops.mailers.info import MailerInfo, TLSMode
from mailops.mailers.registry import setting_name

# Lazy: formatted when a check runs, in the language active then.
SILENCE = gettext_lazy("If this is intended, add '{id}' to SILENCED_SYSTEM_CHECKS.")


def port_and_tls(info: MailerInfo) -> list[checks.CheckMessage]:
    alias, port, mode = info.alias, info.port, info.tls_mode
    if port == 25 and (
        mode == TLSMode.IMPLICIT
        or (mode == TLSMode.STARTTLS and info.classic and not info.port_configured)
    ):
        return _tls_on_port_25(info)
    if not info.port_configured or mode == TLSMode.CONFLICT:
        # Without a port Django picks the one that matches the TLS mode.
        return _auth_in_clear(info) if mode == TLSMode.NONE else []
    if port == 587 and mode != TLSMode.STARTTLS:
        problem = (
            _(
                "Mailer %(alias)r uses implicit TLS (use_ssl) on port 587, where servers "
                "expect STARTTLS: the TLS handshake fails."
            )
            if mode == TLSMode.IMPLICIT
            else _(
                "Mailer %(alias)r connects to port 587 without STARTTLS: servers refuse AUTH "
                "there (530) or the password crosses the network unencrypted."
            )
        )
        return [
            checks.Warning(
                problem % {"alias": alias},
                hint=_(
                    "Use STARTTLS on port 587 (smtp+tls://, use_tls=True), or implicit TLS "
                    "on port 465 (smtps://, use_ssl=True)."
                ),
                id="mailops.W002",
            )
        ]
    if port == 465 and mode != TLSMode.IMPLICIT:
        problem = (
            _(
                "Mailer %(alias)r uses STARTTLS (use_tls) on port 465, where servers expect "
                "implicit TLS: the connection hangs until the timeout."
            )
            if mode == TLSMode.STARTTLS
            else _(
                "Mailer %(alias)r connects to port 465 without TLS, where servers expect "
                "implicit TLS: the connection hangs until the timeout."
            )
        )
        return [
            checks.Warning(
                problem % {"alias": alias},
                hint=_(
                    "Use implicit TLS on port 465 (smtps://, use_ssl=True), or STARTTLS on "
                    "port 587 (smtp+tls://, use_tls=True)."
                ),
                id="mailops.W003",
            )
        ]
    return _auth_in_clear(info) if mode == TLSMode.NONE else []


def _tls_on_port_25(info: MailerInfo) -> list[checks.CheckMessage]:
    """W013: implicit TLS on port 25, or EMAIL_USE_TLS without EMAIL_PORT.

    The classic settings default EMAIL_PORT to 25 whatever the TLS mode (a
    MAILERS entry picks 587 or 465); port 25 is the server-to-server port,
    blocked by most hosting and home networks, and speaks no implicit TLS.
    """
    implicit = info.tls_mode == TLSMode.IMPLICIT
    problem = (
        _(
            "Mailer %(alias)r uses implicit TLS on port 25, where servers speak plain SMTP: "
            "the connection hangs until the timeout."
        )
        if implicit
        else _(
            "Mailer %(alias)r uses STARTTLS on port 25, the server-to-server port that most "
            "hosting and home networks block and submission services do not offer."
        )
    )
    fix = (
        _(
            "Set %(setting)s to %(port)s (not set: Django's classic settings use 25 whatever "
            "the TLS mode)."
        )
        if info.classic and not info.port_configured
        else _("Set %(setting)s to %(port)s.")
    )
    values = {"setting": setting_name(info.alias, "port"), "port": 465 if implicit else 587}
    return [
        checks.Warning(
            problem % {"alias": info.alias},
            hint=fix % values + " " + SILENCE.format(id="mailops.W013"),
            id="mailops.W013",
        )
    ]


def _auth_in_clear(info: MailerInfo) -> list[checks.CheckMessage]:
    if not info.username or info.loopback:
        return []
    return [
        checks.Warning(
            _("Mailer %(alias)r sends its username and password to %(address)s without TLS.")
            % {"alias": info.alias, "address": info.address},
            hint=_(
                "Set %(use_tls)s=True with port 587 (STARTTLS; smtp+tls:// on a mailer URL) or "
                "%(use_ssl)s=True with port 465 (implicit TLS; smtps://); plain SMTP with a "
                "password is only safe on loopback."
            )
            % {
                "use_tls": setting_name(info.alias, "use_tls"),
                "use_ssl": setting_name(info.alias, "use_ssl"),
            }
            + " "
            + SILENCE.format(id="mailops.W004"),
            id="mailops.W004",
        )
    ]
