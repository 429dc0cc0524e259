"""A plain SMTP server on loopback that fails on purpose, for the delivery-guarantee tests.

aiosmtpd cannot store a message and then hang up before replying, which is
the case that matters most (the client cannot know whether it was
delivered). This server speaks just enough SMTP (EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT) over a thread per connection, and tests steer it:

* ``faults[recipient]`` is one :class:`Fault`, used once (a retry then
  goes through): ``"store_then_drop"`` (message stored, connection closed
  before the reply), ``"hang"`` (message stored, no reply ever),
  ``"drop_mid_data"`` (closed after part of the message, before the final
  "."), ``"421_rcpt"``, ``"421_data"`` and ``"421_end"`` (421 and hang-up
  at that step), ``"550_rcpt"``;
* ``mail_faults`` is a list consumed at the next MAIL commands:
  ``"drop"`` (connection closed as MAIL arrives, as after an idle
  timeout), ``"421"``, or any other reply line to refuse the sender with
  (``"553 5.1.8 ..."``), the connection staying open;
* ``rset_421_after_refusals``: like Postfix's ``smtpd_hard_error_limit``,
  after that many refused recipients on one connection RSET gets a 421
  and the connection is closed;
* ``rset_reply``: a reply line that refuses RSET (Postfix's 530 before STARTTLS);
* ``delay``: seconds to wait before answering the end of DATA (slow server);
* ``pipelining``: EHLO lists PIPELINING (RFC 2920). The ``faulty_smtp``
  fixture runs each test twice, with it off and on. Like Postfix, the
  server notes in ``improper`` a command sent ahead where it may not be
  (anything before the reply to EHLO, DATA or QUIT, or with PIPELINING
  off, before any reply); the fixture asserts there is none. ``groups``
  counts MAIL commands that arrived together with their RCPT and DATA.

``deliveries`` counts, per recipient, the messages stored; ``quits`` the
QUIT commands received (a client that hangs up without one is rude to Postfix).
"""

from __future__ import annotations

import email
import email.policy
import select
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

from tests.smtp_server import HOST, free_port

Fault = Literal[
    "store_then_drop", "hang", "drop_mid_data", "421_rcpt", "421_data", "421_end", "550_rcpt"
]


class _Lines:
    """Lines from a socket, and whether more has arrived than was read (sent ahead)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.start = 0

    def _receive(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            chunk = b""
        if self.start > 65536:
            # Read lines are dropped now and then, not per line (a message has many).
            del self.buffer[: self.start]
            self.start = 0
        self.buffer += chunk
        return bool(chunk)

    def readline(self) -> bytes:
        while (end := self.buffer.find(b"\n", self.start)) < 0:
            if not self._receive():
                line = bytes(self.buffer[self.start :])
                self.buffer, self.start = bytearray(), 0
                return line
        line = bytes(self.buffer[self.start : end + 1])
        self.start = end + 1
        return line

    def ahead(self) -> bytes:
        """What the client has sent beyond the line just read (without waiting for more)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        if readable:
            self._receive()
        return bytes(self.buffer[self.start :])


# After these a client must wait for the reply even with PIPELINING (RFC 2920 §3.1).
_GROUP_ENDS = ("EHLO", "HELO", "DATA", "QUIT", "STARTTLS", "NOOP")


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        owner.note_connection()
        self.lines = _Lines(self.request)
        self.refusals = 0
        self.reply("220 faulty.localhost ESMTP ready")
        mail_from: str | None = None
        rcpts: list[str] = []
        while True:
            line = self.lines.readline()
            if not line:
                return
            command = line.decode("ascii", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            ahead = self.lines.ahead()
            if ahead and (not owner.pipelining or verb in _GROUP_ENDS):
                owner.note_improper(verb)
            if verb == "MAIL" and ahead.count(b"\n") >= 2:
                owner.note_group()
            if verb in ("EHLO", "HELO"):
                extensions = ["250-SIZE 10240000", "250 8BITMIME"]
                if owner.pipelining:
                    extensions.insert(0, "250-PIPELINING")
                self.reply("250-faulty.localhost", *extensions)
            elif verb == "MAIL":
                fault = owner.next_mail_fault()
                # "" lets one MAIL through, so a fault can wait for a later message.
                if fault == "drop":
                    return
                if fault == "421":
                    self.reply("421 4.3.2 Service shutting down")
                    return
                if fault:
                    self.reply(fault)
                    continue
                mail_from, rcpts = command.split(":", 1)[1].strip(), []
                self.reply("250 2.1.0 OK")
            elif verb == "RCPT":
                address = command.split(":", 1)[1].split()[0].strip("<>")
                fault = owner.fault_for(address, ("421_rcpt", "550_rcpt"))
                if fault == "421_rcpt":
                    self.reply("421 4.4.2 Closing connection")
                    return
                if fault == "550_rcpt":
                    self.refusals += 1
                    self.reply("550 5.1.1 No such user")
                    continue
                rcpts.append(address)
                self.reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not self.data(mail_from, rcpts):
                    return
                mail_from, rcpts = None, []
            elif verb == "RSET":
                if owner.rset_421_after_refusals and self.refusals >= owner.rset_421_after_refusals:
                    self.reply("421 4.7.0 Error: too many errors")
                    return
                if owner.rset_reply:
                    self.reply(owner.rset_reply)
                    continue
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                owner.note_quit()
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not recognised")

    def data(self, mail_from: str | None, rcpts: list[str]) -> bool:
        """Receive one message; ``False`` when the connection is to be closed."""
        owner = self.server.owner
        if mail_from is None or not rcpts:
            self.reply("503 5.5.1 Bad sequence of commands")
            return True
        fault = owner.fault_for(
            rcpts[0], ("store_then_drop", "hang", "drop_mid_data", "421_data", "421_end")
        )
        if fault == "421_data":
            self.reply("421 4.3.0 Closing connection")
            return False
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        lines: list[bytes] = []
        while True:
            line = self.lines.readline()
            if not line:
                return False
            if fault == "drop_mid_data" and len(lines) >= 2:
                return False
            if line == b".\r\n":
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        if fault == "421_end":
            self.reply("421 4.3.0 Closing connection")
            return False
        owner.store(rcpts, b"".join(lines))
        if owner.delay:
            time.sleep(owner.delay)
        if fault == "store_then_drop":
            return False
        if fault == "hang":
            owner.hung.wait()
            return False
        self.reply("250 2.0.0 OK: queued")
        return True

    def reply(self, *lines: str) -> None:
        try:
            self.wfile.write(b"".join(f"{line}\r\n".encode() for line in lines))
        except OSError:
            return


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FaultySMTPServer


class FaultySMTPServer:
    """The server and what tests steer and read (see the module docstring)."""

    def __init__(self, *, pipelining: bool = False) -> None:
        self.host = HOST
        self.pipelining = pipelining
        # The client's socket timeout: short, so that a "hang" ends soon.
        self.timeout = 2.0
        self.port = free_port()
        self.faults: dict[str, Fault] = {}
        self.mail_faults: list[str] = []
        self.rset_421_after_refusals = 0
        self.rset_reply = ""
        self.delay = 0.0
        self.deliveries: Counter[str] = Counter()
        self.message_ids: list[str] = []
        self.connections = 0
        self.quits = 0
        self.improper: list[str] = []
        self.groups = 0
        # Set at stop: a "hang" ends then.
        self.hung = threading.Event()
        self._lock = threading.Lock()
        self._server = _TCPServer((self.host, self.port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def options(self, **overrides: object) -> dict[str, object]:
        """Django SMTP backend ``OPTIONS`` for this server (plain text, no AUTH)."""
        return {"host": self.host, "port": self.port, "timeout": self.timeout, **overrides}

    def note_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def note_improper(self, verb: str) -> None:
        with self._lock:
            self.improper.append(f"improper command pipelining after {verb}")

    def note_group(self) -> None:
        with self._lock:
            self.groups += 1

    def note_quit(self) -> None:
        with self._lock:
            self.quits += 1

    def next_mail_fault(self) -> str | None:
        with self._lock:
            return self.mail_faults.pop(0) if self.mail_faults else None

    def fault_for(self, address: str, kinds: tuple[str, ...]) -> str | None:
        """The recipient's fault if it is one of ``kinds``; used once."""
        with self._lock:
            fault = self.faults.get(address)
            if fault in kinds:
                del self.faults[address]
                return fault
        return None

    def store(self, rcpts: list[str], data: bytes) -> None:
        message = email.message_from_bytes(data, policy=email.policy.default)
        with self._lock:
            for rcpt in rcpts:
                self.deliveries[rcpt] += 1
            self.message_ids.append(str(message["Message-ID"]))

    def stop(self) -> None:
        self.hung.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(params=["lock-step", "pipelining"])
def faulty_smtp(request: pytest.FixtureRequest) -> Iterator[FaultySMTPServer]:
    server = FaultySMTPServer(pipelining=request.param == "pipelining")
    yield server
    server.stop()
    assert not server.improper


@pytest.fixture
def faulty_smtp_factory() -> Iterator[Callable[[], FaultySMTPServer]]:
    started: list[FaultySMTPServer] = []

    def factory() -> FaultySMTPServer:
        server = FaultySMTPServer()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
    for server in started:
        assert not server.improper


def wait_for(condition: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
