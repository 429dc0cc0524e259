"""The suppression list's system checks: ``mailops.W040`` and ``mailops.W041``."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.translation import gettext as _

from mailops.conf import get_setting
from mailops.suppression.bypass import BypassPathError, code_of


def check_suppression_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W040: site mail is to be suppressed but not audited; W041: a bypass names nothing."""
    found: list[checks.CheckMessage] = []
    if get_setting("SUPPRESS_SITE_MAIL") and not get_setting("AUDIT_ALL_MAIL"):
        found.append(
            checks.Warning(
                _(
                    "MAILOPS['SUPPRESS_SITE_MAIL'] is on, but MAILOPS['AUDIT_ALL_MAIL'] is off: "
                    "site mail is only filtered where it is audited, so suppressed addresses "
                    "still get it."
                ),
                hint=_(
                    "Set MAILOPS['AUDIT_ALL_MAIL'] = True as well (see 'The suppression "
                    "list' in the docs), or turn SUPPRESS_SITE_MAIL off."
                ),
                id="mailops.W040",
            )
        )
    for path in get_setting("SUPPRESSION_BYPASS"):
        try:
            code_of(path)
        except BypassPathError as error:
            if error.not_function:
                message = _(
                    "MAILOPS['SUPPRESSION_BYPASS']: %(path)r is not a Python function or "
                    "method; mail it was meant to let through is suppressed like any other."
                )
            else:
                message = _(
                    "MAILOPS['SUPPRESSION_BYPASS']: %(path)r is not an importable function or "
                    "method; mail it was meant to let through is suppressed like any other."
                )
            found.append(
                checks.Warning(
                    message % {"path": error.path},
                    hint=_(
                        "Name a function or method by its dotted path, e.g. "
                        "'django.contrib.auth.forms.PasswordResetForm.send_mail'."
                    ),
                    id="mailops.W041",
                )
            )
    return found
