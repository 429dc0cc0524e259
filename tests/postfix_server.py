"""A private Postfix (Debian's ``postfix`` package) on loopback, started and stopped by tests.

Its own configuration, queue, data and mail directories live under a temp
directory; the system instance is never touched (it need not even run).
It listens on one loopback port, relays nothing, and delivers mail for
``example.test`` into one Maildir, where tests count what arrived. Anything
else is refused at RCPT (554 relay access denied), and like a real relay it
hangs up with 421 after ``smtpd_hard_error_limit`` errors. Its log is a file
(``maillog``). Root is needed (Postfix's master starts as root and drops to
the ``postfix`` user); ``scripts/test`` installs the package.
"""

from __future__ import annotations

import email
import email.policy
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.smtp_server import HOST, free_port

POSTFIX = Path("/usr/sbin/postfix")
DOMAIN = "example.test"

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mailops-test.localhost
mydomain = localhost
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = reject_unauth_destination
smtpd_hard_error_limit = {hard_error_limit}
smtpd_soft_error_limit = {hard_error_limit}
smtpd_error_sleep_time = 0
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
alias_maps =
alias_database =
biff = no
"""

SERVICES = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class PostfixServer:
    """One private Postfix instance; ``deliveries()`` reads its Maildir."""

    def __init__(self, root: Path, *, hard_error_limit: int = 5) -> None:
        assert POSTFIX.exists(), f"{POSTFIX} not found: apt-get install postfix"
        assert os.geteuid() == 0, "a private Postfix instance needs root"
        self.root = root
        self.host = HOST
        self.port = free_port()
        owner = pwd.getpwnam("postfix")
        for name in ("conf", "queue", "data", "mail"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for name in ("data", "mail"):
            os.chown(root / name, owner.pw_uid, owner.pw_gid)
        root.chmod(0o755)
        (root / "conf" / "main.cf").write_text(
            MAIN_CF.format(
                root=root,
                domain=DOMAIN,
                uid=owner.pw_uid,
                gid=owner.pw_gid,
                hard_error_limit=hard_error_limit,
            )
        )
        (root / "conf" / "master.cf").write_text(
            f"{self.host}:{self.port} inet n - n - - smtpd\n" + SERVICES
        )
        self._postfix("start")
        self._wait_until_listening()

    def options(self, **overrides: object) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "timeout": 10, **overrides}

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, text: str, *, timeout: float = 10.0) -> str:
        """The log once it contains ``text`` (Postfix writes it moments after the fact)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the Postfix log:\n{log[-3000:]}")
            time.sleep(0.05)
        return log

    def deliveries(self, expected: int, *, timeout: float = 20.0) -> Counter[str]:
        """Recipients of the messages in the Maildir, once ``expected`` arrived (or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            found = (
                Counter(
                    str(
                        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)[
                            "To"
                        ]
                    )
                    for path in (self.root / "mail" / "box" / "new").glob("*")
                )
                if (self.root / "mail" / "box" / "new").exists()
                else Counter()
            )
            if sum(found.values()) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def stop(self) -> None:
        self._postfix("stop")

    def _postfix(self, command: str) -> None:
        completed = subprocess.run(
            [str(POSTFIX), "-c", str(self.root / "conf"), command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, (command, completed.stderr, self.log()[-2000:])

    def _wait_until_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"Postfix did not listen on {self.port}: {self.log()[-2000:]}")


@pytest.fixture
def postfix() -> Iterator[PostfixServer]:
    # Not under pytest's tmp_path (mode 0700: the postfix user could not
    # enter it); a short path too, as Postfix's sockets live in the queue.
    root = Path(tempfile.mkdtemp(prefix="mailops-pfx-", dir="/tmp"))
    server = PostfixServer(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
