"""A mail backend that is not Django's SMTP class, for the guarantee tests' second send path.

Delivery sends prebuilt bytes only through Django's own SMTP backend; any
other backend, a subclass of it included, gets a full message through its
``send_messages``. The guarantees must hold on both paths.
"""

from __future__ import annotations

import pytest
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
SUBCLASSED_SMTP = "tests.backends.SubclassedSMTPBackend"


class SubclassedSMTPBackend(SMTPBackend):
    """What a site's own SMTP backend looks like: Django's, with a change of its own."""


@pytest.fixture(params=[DJANGO_SMTP, SUBCLASSED_SMTP], ids=["bytes", "message"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both send paths: prebuilt bytes (Django's SMTP class), a full message (anything else)."""
    return str(request.param)
