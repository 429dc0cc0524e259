"""A real IMAP server for the proof-of-arrival tests: Debian's Dovecot on loopback.

``dovecot_server`` starts ``dovecot -F`` once per session with its own
configuration in a temporary directory (Maildir with ``INBOX`` and ``Junk``,
one user), and stops it afterwards. ``start_dovecot(sasl=True)`` also
opens Dovecot's authentication service on a loopback port, for Postfix's
``smtpd_sasl_type = dovecot`` (see :mod:`tests.postfix_server`): the same
user then signs in to SMTP. ``delivering_smtp_server`` is the
loopback SMTP server of :mod:`tests.smtp_server` that also delivers what it
accepts into that Maildir, as a receiving mail server would: with an
Authentication-Results header, chosen recipients to ``Junk``, others
accepted and never delivered.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.smtp_server import HOST, LoopbackSMTPServer, free_port

IMAP_USER = "ops@example.com"
IMAP_PASSWORD = "imap-secret-Pa55"
# The receiving server's name in the Authentication-Results it writes (the
# mailbox entries trust it: the IMAP host, 127.0.0.1, is not that name).
AUTHSERV_ID = "mx.mailops.test"
# Dovecot refuses to run mail processes as root: mail belongs to "nobody".
MAIL_UID = 65534
AUTH_RESULTS = (
    f"{AUTHSERV_ID}; spf=pass smtp.mailfrom=example.com; "
    "dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
)

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{dir}/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={dir}/home
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{auth_service}namespace inbox {{
  inbox = yes
  separator = /
{special_use}}}
"""

# Junk is flagged \Junk and known by name; Bulk is known only by its flag.
SPECIAL_USE = {"Junk": "\\Junk", "Bulk": "\\Junk"}
SPECIAL_USE_MAILBOX = """\
  mailbox "{name}" {{
    special_use = {flag}
  }}
"""

# Postfix's smtpd asks Dovecot's auth service whether a SASL login is valid
# (smtpd_sasl_path = inet:127.0.0.1:PORT), instead of the default unix socket.
# No auth penalty (Dovecot's documented switch: an anvil socket the auth
# process cannot open): after one wrong password it would delay every
# following login from 127.0.0.1 by seconds, in this test and the next.
SASL_AUTH_SERVICE = """\
service auth {{
  inet_listener sasl {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


@dataclass
class DovecotServer:
    """A running Dovecot: where it listens, who may log in, where its mail is."""

    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    username: str = IMAP_USER
    password: str = IMAP_PASSWORD
    host: str = HOST
    # The auth service's loopback port for Postfix (``start_dovecot(sasl=True)``).
    sasl_port: int | None = None
    # Folder name -> Maildir++ directory name (see start_dovecot).
    folders: dict[str, str] = field(default_factory=dict)

    @property
    def maildir(self) -> Path:
        return self.directory / "Maildir"

    def mailbox(self, **overrides: Any) -> dict[str, Any]:
        """A ``MAILOPS["MAILBOXES"]`` entry for this server."""
        entry: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "ssl": False,
            "timeout": 5,
            "authserv_id": AUTHSERV_ID,
        }
        entry.update(overrides)
        return entry

    def url(self, *, password: str | None = None) -> str:
        return f"imap://ops%40example.com:{password or self.password}@{self.host}:{self.port}"

    def deliver(self, data: bytes, *, folder: str = "INBOX") -> None:
        """Store one message the Maildir++ way: write in tmp/, rename into new/."""
        on_disk = self.folders.get(folder, folder)
        root = self.maildir if folder == "INBOX" else self.maildir / f".{on_disk}"
        name = f"{time.time_ns()}.{os.getpid()}.mailops-test"
        temporary = root / "tmp" / name
        temporary.write_bytes(data)
        os.chown(temporary, MAIL_UID, MAIL_UID)
        temporary.rename(root / "new" / name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


def start_dovecot(
    *,
    sasl: bool = False,
    password: str = IMAP_PASSWORD,
    folders: dict[str, str] | None = None,
    special_use: dict[str, str] | None = None,
) -> DovecotServer:
    """Start a private Dovecot; with ``sasl``, its auth service also listens on a port.

    ``folders`` maps each folder's name (as people read it) to its Maildir++
    directory name (modified UTF-7, as Dovecot stores it, written out here
    by hand rather than by the code under test); ``special_use`` maps
    folder names to their flag. The defaults: Junk and Bulk, both \\Junk.
    """
    folders = {"Junk": "Junk", "Bulk": "Bulk"} if folders is None else folders
    special_use = SPECIAL_USE if special_use is None else special_use
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    # Dovecot's processes (running as dovecot/nobody) must traverse every parent:
    # pytest's tmp_path sits under a 0700 folder, so use /tmp directly.
    directory = Path(tempfile.mkdtemp(prefix="mailops-dovecot-", dir="/tmp"))
    directory.chmod(0o755)
    port = free_port()
    for sub in ("run", "state", "home", "Maildir/tmp", "Maildir/new", "Maildir/cur"):
        (directory / sub).mkdir(parents=True)
    for on_disk in folders.values():
        for sub in ("tmp", "new", "cur"):
            (directory / f"Maildir/.{on_disk}" / sub).mkdir(parents=True)
    (directory / "Maildir/subscriptions").write_text("".join(f"{n}\n" for n in folders))
    for path in [directory / "home", *(directory / "Maildir").rglob("*"), directory / "Maildir"]:
        os.chown(path, MAIL_UID, MAIL_UID)
    users = directory / "users"
    users.write_text(f"{IMAP_USER}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
    shutil.chown(users, "root", "dovecot")
    users.chmod(0o640)
    sasl_port = free_port() if sasl else None
    auth_service = "" if sasl_port is None else SASL_AUTH_SERVICE.format(port=sasl_port)
    config = directory / "dovecot.conf"
    mailboxes = "".join(
        SPECIAL_USE_MAILBOX.format(name=name, flag=flag) for name, flag in special_use.items()
    )
    config.write_text(
        CONFIG.format(
            dir=directory,
            port=port,
            uid=MAIL_UID,
            auth_service=auth_service,
            special_use=mailboxes,
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen([binary, "-F", "-c", str(config)], stderr=subprocess.PIPE)
    server = DovecotServer(
        directory=directory,
        port=port,
        process=process,
        sasl_port=sasl_port,
        password=password,
        folders=folders,
    )
    try:
        _wait_for_greeting(server)
    except BaseException:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return server


def _wait_for_greeting(server: DovecotServer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.directory / "dovecot.log"
            details = log.read_text() if log.exists() else ""
            stderr = server.process.stderr.read().decode() if server.process.stderr else ""
            raise RuntimeError(f"dovecot exited: {stderr}{details}")
        try:
            with socket.create_connection((HOST, server.port), timeout=1) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"dovecot did not greet on port {server.port} within {timeout}s")


class DeliveringSMTPServer(LoopbackSMTPServer):
    """The loopback SMTP server, delivering what it accepts into a Dovecot Maildir."""

    def __init__(self, *, dovecot: DovecotServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dovecot = dovecot
        # Recipients whose mail the receiving side files as spam, and where.
        self.junk_recipients: set[str] = set()
        self.junk_folder = "Junk"
        # Recipients accepted at DATA and then lost (a silent drop).
        self.lost_recipients: set[str] = set()
        self.authentication_results = AUTH_RESULTS

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if not reply.startswith("250"):
            return reply
        data = envelope.original_content or b""
        stamped = f"Authentication-Results: {self.authentication_results}\r\n".encode() + data
        for rcpt in envelope.rcpt_tos:
            key = rcpt.lower()
            if key in {a.lower() for a in self.lost_recipients}:
                continue
            junk = key in {a.lower() for a in self.junk_recipients}
            self.dovecot.deliver(stamped, folder=self.junk_folder if junk else "INBOX")
        return reply


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A real Dovecot IMAP server on loopback for the session."""
    server = start_dovecot()
    yield server
    server.stop()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def delivering_smtp_server(dovecot_server: DovecotServer) -> Iterator[DeliveringSMTPServer]:
    """A plain-text SMTP server (AUTH required) that delivers into ``dovecot_server``."""
    server = DeliveringSMTPServer(dovecot=dovecot_server, tls_mode="none")
    yield server
    server.stop()
