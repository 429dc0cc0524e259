"""Against a real Postfix 3.7 on loopback (a private instance): the issue's interop cases."""

from __future__ import annotations

from typing import Any

import pytest

from mailops.mailers.connection import verify_connection
from tests.backends import DJANGO_SMTP
from tests.postfix_server import PostfixServer, send_past_the_error_limit

pytestmark = pytest.mark.django_db


def use_postfix(
    settings: Any, postfix: PostfixServer, *, backend: str = DJANGO_SMTP, **options: Any
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "default": {"BACKEND": backend, "OPTIONS": postfix.options(**options)},
    }
    settings.DEFAULT_FROM_EMAIL = "ops@mailops-test.localhost"


def test_refused_recipients_past_the_error_limit_do_not_cost_deliverable_ones(
    settings, postfix: PostfixServer, backend: str
) -> None:
    # Inline (no worker): the message after Postfix hangs up must still go out, on both paths.
    use_postfix(settings, postfix, backend=backend)

    _rows, log = send_past_the_error_limit(postfix)

    # The refusals share a connection (RSET) up to the limit, then a fresh one.
    assert log.count("lost connection after RCPT") == 0


def test_a_failed_connection_check_says_quit_to_postfix(settings, postfix: PostfixServer) -> None:
    # This Postfix offers no AUTH: a mailer with a password fails the check at AUTH.
    use_postfix(settings, postfix, username="ops", password="relay-pass-4821")

    result = verify_connection("default")

    assert not result.ok
    assert "AUTH" in result.error
    log = postfix.wait_for_log("disconnect from localhost[127.0.0.1] ehlo=1 quit=1")
    # ("lost connection after CONNECT" is the fixture's own readiness probe.)
    assert "lost connection after EHLO" not in log
    assert "lost connection after AUTH" not in log
