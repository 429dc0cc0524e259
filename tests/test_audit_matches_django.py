"""The site-mail audit changes nothing Django does: stock and audited sends, side by side.

Each test sends the same way twice in this process, once with
``MAILOPS["AUDIT_ALL_MAIL"]`` off (stock Django) and once with it on, and
compares what the sender and the world see: the return value, the exception,
the bytes on the wire (through a real loopback SMTP server) apart from the
Message-ID's and Date's values, the ``mail.outbox`` copies, and the
connections opened.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail import EmailMessage, mailers
from django.core.mail.handler import MailersHandler
from django.test import override_settings

from mailops.models import MailLog, MailStatus
from tests.smtp_server import LoopbackSMTPServer

pytestmark = pytest.mark.django_db

SMTP = "django.core.mail.backends.smtp.EmailBackend"
AUDIT_RECEIVER = "mailops.audit.post_send"  # its dispatch_uid
# Values that differ between any two sends, stock or not.
_VARYING = re.compile(rb"^(Message-ID|Date): [^\r\n]*", re.IGNORECASE | re.MULTILINE)


@dataclass
class Outcome:
    """What one send did, as the sender and the server saw it."""

    returned: Any
    raised: tuple[type[BaseException], str] | None
    wire: list[bytes]
    outbox: list[dict[str, Any]]
    connections: int


def audited(flag: bool) -> override_settings:
    return override_settings(MAILOPS={**django_settings.MAILOPS, "AUDIT_ALL_MAIL": flag})


def send_both_ways(
    send: Callable[[], Any], server: LoopbackSMTPServer | None = None, expect: int = 0
) -> tuple[Outcome, Outcome]:
    """``send()`` with the audit off, then on; what each did."""
    outcomes = []
    for flag in (False, True):
        mail.outbox = []
        if server is not None:
            server.messages.clear()
            server.connections = 0
        returned, raised = None, None
        with audited(flag):
            try:
                returned = send()
            except Exception as error:  # noqa: BLE001 - compared, stock against audited
                raised = (type(error), str(error))
        wire = [] if server is None else [m.data for m in server.wait_for_messages(expect)]
        outcomes.append(
            Outcome(
                returned=returned,
                raised=raised,
                wire=[_VARYING.sub(rb"\1: *", data) for data in wire],
                outbox=[dict(vars(copy)) for copy in mail.outbox],
                connections=0 if server is None else server.connections,
            )
        )
    return outcomes[0], outcomes[1]


@pytest.fixture
def smtp_mailer(smtp_server: LoopbackSMTPServer, settings: Any) -> LoopbackSMTPServer:
    settings.MAILERS = {
        **settings.MAILERS,
        "smtp": {"BACKEND": SMTP, "OPTIONS": smtp_server.options()},
    }
    return smtp_server


def message(subject: str = "Hi", **kwargs: Any) -> EmailMessage:
    return EmailMessage(subject, "Body", "site@example.com", ["alice@example.com"], **kwargs)


def test_outbox_copies_are_the_same_with_the_audit_on() -> None:
    stock, audit = send_both_ways(lambda: message(headers={"X-Foo": "1"}).send(using="outbox"))

    assert audit == stock
    assert audit.outbox[0]["extra_headers"] == {"X-Foo": "1"}
    assert MailLog.objects.get().status == MailStatus.SENT  # and the audit did log it


def test_custom_headers_keep_djangos_order_and_bytes_on_the_wire(smtp_mailer) -> None:
    stock, audit = send_both_ways(
        lambda: message(headers={"X-Foo": "1"}).send(using="smtp"), smtp_mailer, expect=1
    )

    assert audit == stock
    [data] = audit.wire
    names = re.findall(rb"^(Date|Message-ID|X-Foo):", data, re.MULTILINE)
    assert names == [b"Date", b"Message-ID", b"X-Foo"]
    [received] = smtp_mailer.messages
    assert MailLog.objects.get().message_id == received.message_id


def test_a_message_id_of_the_senders_own_is_sent_and_logged_unchanged(smtp_mailer) -> None:
    own = {"Message-ID": "<own@example.com>", "X-Foo": "1"}
    stock, audit = send_both_ways(
        lambda: message(headers=dict(own)).send(using="smtp"), smtp_mailer, expect=1
    )

    assert audit == stock
    assert smtp_mailer.messages[0].message_id == "<own@example.com>"
    assert MailLog.objects.get().message_id == "<own@example.com>"


def test_an_empty_iterator_to_a_server_that_is_down_raises_like_stock(
    settings: Any, closed_port: int
) -> None:
    settings.MAILERS = {
        **settings.MAILERS,
        "down": {"BACKEND": SMTP, "OPTIONS": {"host": "127.0.0.1", "port": closed_port}},
    }

    stock, audit = send_both_ways(lambda: mailers["down"].send_messages(iter([])))

    assert audit == stock
    assert stock.raised is not None
    assert stock.raised[0] is ConnectionRefusedError


def test_an_empty_list_returns_zero_without_connecting_like_stock(smtp_mailer) -> None:
    stock, audit = send_both_ways(lambda: mailers["smtp"].send_messages([]), smtp_mailer)

    assert audit == stock
    assert (stock.returned, stock.connections) == (0, 0)


def test_a_generator_that_fails_after_one_message_sends_that_message_first(
    smtp_mailer,
) -> None:
    def messages() -> Iterator[EmailMessage]:
        yield message("First")
        raise RuntimeError("the generator broke")

    stock, audit = send_both_ways(
        lambda: mailers["smtp"].send_messages(messages()), smtp_mailer, expect=1
    )

    assert audit == stock
    assert stock.raised == (RuntimeError, "the generator broke")
    assert len(stock.wire) == 1
    assert stock.connections == 1
    [row] = MailLog.objects.all()
    assert (row.subject, row.status) == ("First", MailStatus.SENT)


def test_several_messages_return_the_count_over_one_connection_like_stock(smtp_mailer) -> None:
    stock, audit = send_both_ways(
        lambda: mailers["smtp"].send_messages([message("One"), message("Two")]),
        smtp_mailer,
        expect=2,
    )

    assert audit == stock
    assert (stock.returned, stock.connections, len(stock.wire)) == (2, 1, 2)


def test_nothing_of_django_is_patched_while_the_audit_is_off() -> None:
    def patched() -> dict[str, bool]:
        backend = mailers["default"]
        from anymail.signals import post_send

        return {
            "create_connection": hasattr(MailersHandler.create_connection, "__wrapped__"),
            "send_messages": "send_messages" in vars(backend),
            "post_send": any(key[0] == AUDIT_RECEIVER for key, *_ in post_send.receivers),
        }

    with audited(False):
        off = patched()
    with audited(True):
        on = patched()
    with audited(False):
        off_again = patched()

    assert (
        off == off_again == {"create_connection": False, "send_messages": False, "post_send": False}
    )
    assert on == {"create_connection": True, "send_messages": True, "post_send": True}


def test_a_fresh_process_with_the_audit_off_leaves_django_untouched() -> None:
    # ready() itself, before any test switches the setting back and forth.
    probe = (
        "import django; django.setup()\n"
        "from django.core.mail.handler import MailersHandler\n"
        "from django.core.mail import mailers\n"
        "assert not hasattr(MailersHandler.create_connection, '__wrapped__')\n"
        "assert 'send_messages' not in vars(mailers['default'])\n"
        "print('untouched')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stdout.strip()) == (0, "untouched"), done.stderr
