"""Which mailers Django has, as mailops reads them: MAILERS, or the classic default mailer.

The host project on classic ``EMAIL_*`` settings has its own tests
(tests/host/classic); these cover a project with no mail settings at all.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import run_checks

from mailops.mailers.info import MailerKind, configured_mailers
from mailops.mailers.registry import mailer_aliases, setting_name, uses_classic_settings


def test_mailers_defined_are_read_as_they_are(settings: Any) -> None:
    assert not uses_classic_settings()
    assert mailer_aliases() == list(settings.MAILERS)
    assert setting_name("outbox", "host") == "MAILERS['outbox']['OPTIONS']['host']"


def test_without_any_mail_setting_the_default_mailer_is_djangos_default(settings: Any) -> None:
    # Neither MAILERS nor EMAIL_*: Django sends through SMTP on localhost:25.
    # Building that mailer would make Django warn "Django 2028 will not have a
    # default mailer" (an error in this test run): mailops reads Django's
    # defaults instead, and the checks run without a warning.
    del settings.MAILERS

    [info] = configured_mailers()
    # mailops' checks only: Django's own mail check trips over a deleted setting.
    found = {message.id for message in run_checks(tags=["mailops"])}

    assert uses_classic_settings()
    assert (info.alias, info.kind, info.classic) == ("default", MailerKind.SMTP, True)
    assert (info.host, info.port, info.port_configured) == ("localhost", 25, False)
    assert setting_name("default", "host") == "EMAIL_HOST"
    assert "mailops.W005" in found  # Django's default has no timeout
    assert "mailops.E001" not in found
