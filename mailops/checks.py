"""System checks: mail configuration mistakes surface in ``manage.py check``.

Every check reads the mailers (``MAILERS``, or the ``default`` mailer Django
builds from the classic ``EMAIL_*`` settings) and ``settings.MAILOPS`` as data;
nothing here opens a connection (``sendtestmail --check`` does that). Ids:

========  ==========================================================
E001      an alias named by a ``MAILOPS`` setting is not a mailer Django has
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
W012      a real SMTP relay with a sender whose domain is not fully qualified
W013      implicit TLS on port 25, or EMAIL_USE_TLS without EMAIL_PORT (port 25)
W014      the site-mail audit is on with the classic settings: most sends bypass it
W040      ``SUPPRESS_SITE_MAIL`` on while ``AUDIT_ALL_MAIL`` is off: nothing is filtered
W041      a ``SUPPRESSION_BYPASS`` entry names no importable function
W042      ``AUDIT_ALL_MAIL`` on and no ``RETENTION``: the log grows without end
E010      ``MAILOPS['DNS_NAMESERVERS']`` is not a list of ip[:port]
E011      ``MAILOPS['DKIM_SELECTORS']`` is not ``{alias: [selector, ...]}``
E012      ``MAILOPS['DNS_TIMEOUT']`` is not a positive number
E030      a ``MAILOPS['MAILBOXES']`` entry cannot be used
E031      a mailbox for an alias that MAILERS does not define
W030      an IMAP password sent to a remote server without TLS
E013      an app mailops needs is missing from INSTALLED_APPS
E014      a ``MAILOPS`` value of the wrong type or out of range
E015      the self-service page is mounted without the middleware it needs
W009      the user model has no email field: users cannot be mailed
W010      the user model has no is_staff/is_active: no ``--staff``
W011      LOGIN_URL is an admin login, which non-staff users cannot use
E020      (deploy) tracking webhooks mounted without ``ANYMAIL['WEBHOOK_SECRET']``
========  ==========================================================
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mailops.arrival.checks import check_mailboxes
from mailops.audit.checks import check_audit_sees_the_site_mail
from mailops.conf import DEFAULTS, configured_settings, setting_problem
from mailops.deliverability.checks import check_doctor_settings
from mailops.exceptions import InvalidSetting
from mailops.mailers.config_checks import check_mailers
from mailops.mailers.info import MailerInfo, configured_mailers
from mailops.mailers.registry import mailer_aliases, uses_classic_settings
from mailops.mailers.tls_checks import SILENCE
from mailops.recipients import STAFF_FIELDS, has_field
from mailops.retention.checks import check_retention
from mailops.suppression.checks import check_suppression_settings
from mailops.tracking.checks import check_tracking_webhooks


def register_checks() -> None:
    """Register the checks (called from ``MailopsConfig.ready``)."""
    for check in (
        check_mailops_settings,
        check_mailers,
        check_debug_with_real_mailers,
        check_doctor_settings,
        check_mailboxes,
        check_audit_sees_the_site_mail,
        check_suppression_settings,
        check_retention,
    ):
        checks.register(_unless_invalid_setting(check), checks.Tags.mail, "mailops")
    for host_check in (
        check_installed_apps,
        check_user_model,
        check_login_url,
        check_self_service_middleware,
    ):
        checks.register(host_check, "mailops")
    checks.register(check_tracking_webhooks, checks.Tags.security, "mailops", deploy=True)


CheckFunction = Callable[..., list[checks.CheckMessage]]


def _unless_invalid_setting(check: CheckFunction) -> CheckFunction:
    """Run ``check``; a MAILOPS value it cannot read is E014's to report, not a traceback."""

    @functools.wraps(check)
    def guarded(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
        try:
            return check(app_configs, **kwargs)
        except InvalidSetting:
            return []

    return guarded


# --- MAILOPS settings -------------------------------------------------------


def check_mailops_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E001 (alias named by MAILOPS not in MAILERS), W008 (unknown key), E014 (bad value)."""
    messages: list[checks.CheckMessage] = check_mailops_values()
    defined = mailer_aliases()
    known = ", ".join(sorted(defined)) or _("(none)")
    # Without MAILERS, Django builds only 'default' (from the EMAIL_* settings).
    undefined = (
        _(
            "%(where)s names mailer %(alias)r, which Django does not have (no MAILERS: only "
            "'default', from the EMAIL_* settings) (defined: %(known)s)."
        )
        if uses_classic_settings()
        else _(
            "%(where)s names mailer %(alias)r, which MAILERS does not define (defined: %(known)s)."
        )
    )

    def missing(alias: Any, where: str) -> None:
        if alias in defined:
            return
        messages.append(
            checks.Error(
                undefined % {"where": where, "alias": alias, "known": known},
                hint=_(
                    "Add %(alias)r to settings.MAILERS, or change %(where)s to a defined alias. "
                    "(The reference project builds MAILERS from the environment: "
                    "MAILER_%(upper_alias)s_URL=...)"
                )
                % {"alias": alias, "where": where, "upper_alias": str(alias).upper()},
                id="mailops.E001",
            )
        )

    configured = configured_settings()
    default_mailer = configured.get("DEFAULT_MAILER", DEFAULTS["DEFAULT_MAILER"])
    if not setting_problem("DEFAULT_MAILER", default_mailer):
        missing(default_mailer, "MAILOPS['DEFAULT_MAILER']")
    for setting in ("FROM_EMAILS", "THROTTLE"):
        value = configured.get(setting, DEFAULTS[setting])
        for alias in value if isinstance(value, dict) else ():
            missing(alias, f"MAILOPS[{setting!r}][{alias!r}]")

    for name in configured:
        if name not in DEFAULTS:
            close = difflib.get_close_matches(str(name), DEFAULTS, n=1)
            suggestion = _("Did you mean %(key)r? ") % {"key": close[0]} if close else ""
            messages.append(
                checks.Warning(
                    _("MAILOPS has an unknown key %(name)r; mailops ignores it.") % {"name": name},
                    hint=suggestion
                    + _("Known keys: %(keys)s.") % {"keys": ", ".join(sorted(DEFAULTS))},
                    id="mailops.W008",
                )
            )
    return messages


def check_mailops_values() -> list[checks.CheckMessage]:
    """E014: ``MAILOPS`` itself, or one of its values, has the wrong type or range."""
    raw = getattr(settings, "MAILOPS", None)
    if raw is not None and not isinstance(raw, dict):
        return [
            checks.Error(
                _("settings.MAILOPS must be a dict, not %(name)s.") % {"name": type(raw).__name__},
                hint=_(
                    "Write MAILOPS = {'DEFAULT_MAILER': 'default', ...} in settings.py, "
                    "or leave it out to use every default."
                ),
                id="mailops.E014",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for name, value in configured_settings().items():
        problem = setting_problem(str(name), value)
        if problem:
            errors.append(
                checks.Error(
                    _("MAILOPS[%(name)r] %(problem)s") % {"name": name, "problem": problem},
                    hint=_(
                        "Correct MAILOPS[%(name)r] in settings.py, or remove the key to use the "
                        "default, %(value)r."
                    )
                    % {"name": name, "value": DEFAULTS[name]},
                    id="mailops.E014",
                )
            )
    return errors


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
            ngettext(
                "DEBUG is on and mailer %(mailers)s delivers real mail. On a server, DEBUG "
                "error pages show settings and tracebacks to anyone; on a development "
                "machine, test mail reaches real inboxes.",
                "DEBUG is on and mailers %(mailers)s deliver real mail. On a server, DEBUG "
                "error pages show settings and tracebacks to anyone; on a development "
                "machine, test mail reaches real inboxes.",
                len(real),
            )
            % {"mailers": _listing(real)},
            hint=_(
                "In production turn DEBUG off. For development point these mailers at "
                "console://, file:///path or a mail catcher on 127.0.0.1."
            )
            + " "
            + SILENCE.format(id="mailops.W007"),
            id="mailops.W007",
        )
    ]


def _listing(infos: Sequence[MailerInfo]) -> str:
    return ", ".join(f"{info.alias!r} ({info.describe()})" for info in infos)


# --- the host project ----------------------------------------------------------


def check_installed_apps(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E013: the admin pages render django-import-export's templates."""
    if not apps.is_installed("django.contrib.admin") or apps.is_installed("import_export"):
        return []
    return [
        checks.Error(
            _(
                "'import_export' is not in INSTALLED_APPS: the mail log's admin page and the "
                "user import/export use its templates and would answer with a server error."
            ),
            hint=_("Add 'import_export' to INSTALLED_APPS (next to 'mailops')."),
            id="mailops.E013",
        )
    ]


def check_user_model(
    app_configs: Any = None, *, model: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W009 (no email field: users cannot be mailed), W010 (no is_staff/is_active: no --staff)."""
    model = model or get_user_model()
    label = model._meta.label
    messages: list[checks.CheckMessage] = []
    email_field = model.get_email_field_name()
    if not has_field(model, email_field):
        messages.append(
            checks.Warning(
                _(
                    "The user model %(label)s has no field %(email_field)r (its EMAIL_FIELD): "
                    "mailops cannot find users' addresses, so the admin's \"Send test mail\" "
                    "action, the self-service page and sendtestmail --user/--staff send nothing."
                )
                % {"label": label, "email_field": email_field},
                hint=_(
                    "Set EMAIL_FIELD on %(label)s to the name of its email field. Mail to "
                    "addresses (sendtestmail EMAIL) and the mail log work without it."
                )
                % {"label": label},
                id="mailops.W009",
            )
        )
    missing = [name for name in STAFF_FIELDS if not has_field(model, name)]
    if missing:
        messages.append(
            checks.Warning(
                _(
                    "The user model %(label)s has no %(values)s field: sendtestmail --staff "
                    "cannot tell who is active staff and refuses to run."
                )
                % {"label": label, "values": " or ".join(missing)},
                hint=_("Name recipients with --user or by address instead; everything else works.")
                + " "
                + SILENCE.format(id="mailops.W010"),
                id="mailops.W010",
            )
        )
    return messages


def check_login_url(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W011: the self-service page is mounted but LOGIN_URL is an admin site's login."""
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib.admin import AdminSite

    try:
        page = reverse("mailops:self_service")
        login = str(resolve_url(settings.LOGIN_URL))
    except NoReverseMatch:
        return []  # no self-service page (or LOGIN_URL names a missing URL: Django's to say)
    try:
        view = resolve(login.split("?")[0]).func
    except Resolver404:
        return []  # another host's login (an absolute URL), or one Django cannot judge
    if not isinstance(getattr(view, "__self__", None), AdminSite):
        return []
    return [
        checks.Warning(
            _(
                "LOGIN_URL (%(login_url)r) is an admin site's login, which only staff users can "
                "pass: other signed-out users who open the self-service page (%(page)s) cannot "
                "sign in to use it."
            )
            % {"login_url": settings.LOGIN_URL, "page": page},
            hint=_(
                "Point LOGIN_URL at a login page for every user, e.g. "
                "path('accounts/login/', django.contrib.auth.views.LoginView.as_view(), "
                "name='login') in urls.py and LOGIN_URL = 'login'."
            )
            + " "
            + SILENCE.format(id="mailops.W011"),
            id="mailops.W011",
        )
    ]


# What the self-service page uses: the signed-in user and one-off messages.
SELF_SERVICE_MIDDLEWARE = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)


def check_self_service_middleware(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E015: ``mailops.urls`` is mounted but MIDDLEWARE lacks what its page needs."""
    try:
        page = reverse("mailops:self_service")
    except NoReverseMatch:
        return []
    missing = [name for name in SELF_SERVICE_MIDDLEWARE if name not in settings.MIDDLEWARE]
    if not missing:
        return []
    return [
        checks.Error(
            _(
                "The self-service page (%(page)s) needs %(values)s in MIDDLEWARE: without it the "
                "page cannot tell who is signed in or report a send."
            )
            % {"page": page, "values": ", ".join(missing)},
            hint=_(
                "Add them to MIDDLEWARE in this order (as Django's project template has "
                "them), or do not include mailops.urls."
            ),
            id="mailops.E015",
        )
    ]
