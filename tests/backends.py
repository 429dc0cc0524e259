"""The send paths every delivery-guarantee test runs over.

Delivery sends prebuilt bytes only through Django's own SMTP backend; any
other backend, a subclass of it included, gets a full message through its
``send_messages``. The guarantees must hold on both paths: a test takes the
``backend`` fixture (both paths), or, where each case is slow (worker
processes against the faulty server), ``every_send_path``. Worker processes
get the backend through their settings (``tests.worker_processes.mailers``).
"""

from __future__ import annotations

import pytest
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
SUBCLASSED_SMTP = "tests.backends.SubclassedSMTPBackend"
# Not SMTP at all: full messages, no connection to lose.
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


class SubclassedSMTPBackend(SMTPBackend):
    """What a site's own SMTP backend looks like: Django's, with a change of its own."""


@pytest.fixture(params=[DJANGO_SMTP, SUBCLASSED_SMTP], ids=["bytes", "message"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both send paths: prebuilt bytes (Django's SMTP class), a full message (anything else)."""
    return str(request.param)


# Both paths against the faulty server (tests/faulty_smtp.py), with the
# server's pipelining on and off for the bytes path only: the message path
# sends through smtplib's sendmail(), lock-step whatever the server offers.
every_send_path = pytest.mark.parametrize(
    ("backend", "faulty_smtp"),
    [
        pytest.param(DJANGO_SMTP, "lock-step", id="bytes-lock-step"),
        pytest.param(DJANGO_SMTP, "pipelining", id="bytes-pipelining"),
        pytest.param(SUBCLASSED_SMTP, "lock-step", id="message"),
    ],
    indirect=["faulty_smtp"],
)
