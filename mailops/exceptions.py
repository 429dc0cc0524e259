"""What mailops raises for a caller to catch: configuration mistakes and refused moves.

Expected delivery failures are not exceptions: they are ``failed`` rows with
a reason. These are for mistakes a caller or an operator must fix.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _


class UnknownMailer(ImproperlyConfigured):
    """The requested alias is not in ``MAILERS``; the message lists those that are."""

    def __init__(self, alias: str, configured: list[str]) -> None:
        listing = ", ".join(sorted(configured)) or _("(none)")
        super().__init__(
            _("Unknown mailer %(alias)r. Configured mailers: %(listing)s.")
            % {"alias": alias, "listing": listing}
        )
        self.alias = alias


class MailerURLError(ImproperlyConfigured):
    """An environment variable holds a mailer URL that cannot be used."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class InvalidSetting(ImproperlyConfigured):
    """A ``MAILOPS`` value of the wrong type or out of range (``manage.py check``: E014)."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(_("MAILOPS[%(name)r] %(problem)s") % {"name": name, "problem": problem})
        self.name = name


class InvalidTransition(ValueError):
    """A status change that the ``MailLog`` lifecycle does not allow."""
