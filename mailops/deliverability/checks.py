"""System checks for the doctor's settings (``MAILOPS["DNS_NAMESERVERS"]`` and friends).

The reference project validates ``MAILOPS_DNS_NAMESERVERS`` when settings
load; these catch the same mistakes in projects that set ``MAILOPS`` by hand.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.translation import gettext as _

from mailops.conf import get_setting
from mailops.deliverability.nameservers import parse_nameservers


def check_doctor_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E010 (bad DNS_NAMESERVERS), E011 (bad DKIM_SELECTORS), E012 (bad DNS_TIMEOUT)."""
    errors: list[checks.CheckMessage] = []
    nameservers = get_setting("DNS_NAMESERVERS")
    try:
        parse_nameservers(nameservers)
    except (TypeError, ValueError) as error:
        errors.append(
            checks.Error(
                _("MAILOPS['DNS_NAMESERVERS'] is not valid: %(error)s") % {"error": error},
                hint=_(
                    "Give a list of 'ip' or 'ip:port' strings, e.g. ['192.0.2.53', "
                    "'127.0.0.1:5353'] (IPv6 with a port: '[::1]:5353'); leave it empty to use "
                    "the system's resolver."
                ),
                id="mailops.E010",
            )
        )
    selectors = get_setting("DKIM_SELECTORS")
    if not isinstance(selectors, dict) or not all(
        isinstance(value, list | tuple) and all(isinstance(item, str) and item for item in value)
        for value in selectors.values()
    ):
        errors.append(
            checks.Error(
                _("MAILOPS['DKIM_SELECTORS'] must map mailer aliases to lists of selector names."),
                hint=_(
                    "For example {'default': ['s1', 'google']}, or ?dkim_selector=s1 on the "
                    "mailer URL."
                ),
                id="mailops.E011",
            )
        )
    timeout = get_setting("DNS_TIMEOUT")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        errors.append(
            checks.Error(
                _("MAILOPS['DNS_TIMEOUT'] must be a positive number of seconds, not %(timeout)r.")
                % {"timeout": timeout},
                hint=_(
                    "The default, 2, suits most resolvers; a lookup that takes longer is "
                    "reported as 'could not check'."
                ),
                id="mailops.E012",
            )
        )
    return errors
