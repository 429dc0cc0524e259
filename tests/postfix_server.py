"""A private Postfix (Debian's ``postfix`` package) on loopback, started and stopped by tests.

Its own configuration, queue, data and mail directories live under a temp
directory; the system instance is never touched (it need not even run).
It relays nothing and delivers mail for ``example.test`` into one Maildir,
where tests count what arrived. Anything else is refused at RCPT (554
relay access denied), and like a real relay it hangs up with 421 after
``smtpd_hard_error_limit`` errors. Its log is a file (``maillog``). Root is
needed (Postfix's master starts as root and drops to the ``postfix``
user); ``scripts/test`` installs the package.

The ``postfix`` fixture listens on one plain port: no TLS, no AUTH.
``postfix_submission`` also opens a submission port like a provider's 587:
STARTTLS required (a certificate from the session's test CA, ``smtp_ca``),
AUTH offered only after it (``smtpd_tls_auth_only``) and checked by a
private Dovecot (``smtpd_sasl_type = dovecot`` over a loopback port),
relaying only for authenticated clients, and refusing senders without a
fully qualified domain (``reject_non_fqdn_sender``). It is started once
per test module; each test sees only its own log lines and deliveries.
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
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mailops.models import MailLog, MailStatus, MailTrigger
from mailops.recipients import from_addresses
from mailops.services import send_test_mail
from tests.imap_server import MAIL_UID, DovecotServer, start_dovecot
from tests.smtp_server import HOST, SMTPTestCA, free_port

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
relay_domains = {relay_domains}
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {mail_base}
virtual_mailbox_maps = static:{maildir}
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
{extra}"""

# What a "bounces" Postfix adds (``PostfixServer(bounces=dovecot)``): it
# accepts mail for bounce.test and slow.test and then fails its delivery,
# so that Postfix itself writes the RFC 3464 report to the sender, whose
# domain (example.test) it delivers into the Dovecot Maildir (smtpd would
# refuse an error: transport's address at RCPT unless told not to check
# recipients). bounce.test
# fails for good (5.1.1); slow.test is deferred and retried every second,
# with a "delayed" notice once it waited a second (delay_warning_time).
BOUNCE_DOMAIN = "bounce.test"
SLOW_DOMAIN = "slow.test"
BOUNCES_MAIN_CF = """\
smtpd_reject_unlisted_recipient = no
transport_maps = texthash:{root}/conf/transport
delay_warning_time = 1s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""
TRANSPORT = """\
{bounce} error:5.1.1 mailbox unavailable
{slow} retry:4.2.2 mailbox full, try again later
"""

# tlsmgr: without it the submission port answers STARTTLS with "454 TLS not available".
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
tlsmgr unix - - n 1000? 1 tlsmgr
"""

# The submission port, as master.cf's second smtpd. Authenticated clients may
# relay, but only to example.test (reject_unauth_destination), so this test
# Postfix still sends nothing anywhere else; the sender must be fully qualified.
SUBMISSION_SERVICE = """\
{host}:{port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_chain_files={root}/tls/server.pem
  -o smtpd_tls_loglevel=1
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=inet:{host}:{sasl_port}
  -o smtpd_sender_restrictions=reject_non_fqdn_sender
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=reject_unauth_destination
"""


@dataclass(frozen=True)
class SubmissionAuth:
    """What the submission port needs: a CA for its certificate, a Dovecot to check logins."""

    ca: trustme.CA
    sasl_port: int
    username: str
    password: str


class PostfixServer:
    """One private Postfix instance; ``deliveries()`` reads its Maildir.

    With ``submission``, a second smtpd listens on ``submission_port``:
    STARTTLS, then AUTH as ``submission.username``.
    """

    def __init__(
        self,
        root: Path,
        *,
        hard_error_limit: int = 5,
        submission: SubmissionAuth | None = None,
        bounces: DovecotServer | None = None,
    ) -> None:
        assert POSTFIX.exists(), f"{POSTFIX} not found: apt-get install postfix"
        assert os.geteuid() == 0, "a private Postfix instance needs root"
        self.root = root
        self.host = HOST
        self.port = free_port()
        self.submission = submission
        self.submission_port: int | None = None
        # Where this test's part of the log starts (see forget_earlier_tests).
        self._log_start = 0
        owner = pwd.getpwnam("postfix")
        for name in ("conf", "queue", "data", "mail"):
            (root / name).mkdir(parents=True, exist_ok=True)
        for name in ("data", "mail"):
            os.chown(root / name, owner.pw_uid, owner.pw_gid)
        root.chmod(0o755)
        # With ``bounces``, example.test's mail (the sender's bounces among it)
        # goes into that Dovecot's Maildir, as the user Dovecot reads it as.
        mail_base, maildir, uid, gid = root / "mail", "box/", owner.pw_uid, owner.pw_gid
        extra = relay_domains = ""
        if bounces is not None:
            mail_base, maildir, uid, gid = bounces.directory, "Maildir/", MAIL_UID, MAIL_UID
            extra = BOUNCES_MAIN_CF.format(root=root)
            relay_domains = f"{BOUNCE_DOMAIN}, {SLOW_DOMAIN}"
            (root / "conf" / "transport").write_text(
                TRANSPORT.format(bounce=BOUNCE_DOMAIN, slow=SLOW_DOMAIN)
            )
        (root / "conf" / "main.cf").write_text(
            MAIN_CF.format(
                root=root,
                domain=DOMAIN,
                mail_base=mail_base,
                maildir=maildir,
                uid=uid,
                gid=gid,
                hard_error_limit=hard_error_limit,
                relay_domains=relay_domains,
                extra=extra,
            )
        )
        services = f"{self.host}:{self.port} inet n - n - - smtpd\n"
        if submission is not None:
            self.submission_port = free_port()
            # smtpd reads its key as root, before it drops privileges.
            (root / "tls").mkdir(mode=0o700, exist_ok=True)
            leaf = submission.ca.issue_cert(self.host, "localhost")
            leaf.private_key_and_cert_chain_pem.write_to_path(str(root / "tls" / "server.pem"))
            (root / "tls" / "server.pem").chmod(0o600)
            services += SUBMISSION_SERVICE.format(
                host=self.host, port=self.submission_port, root=root, sasl_port=submission.sasl_port
            )
        (root / "conf" / "master.cf").write_text(services + SERVICES)
        self._postfix("start")
        ports = [self.port] if self.submission_port is None else [self.port, self.submission_port]
        try:
            for port in ports:
                self._wait_until_listening(port)
            # Each probe's lines are in the log before a test starts reading it.
            self.wait_for_log("commands=0/0", count=len(ports))
        except BaseException:
            self.stop()
            raise

    def options(self, **overrides: object) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "timeout": 10, **overrides}

    def submission_options(self, **overrides: object) -> dict[str, object]:
        """SMTP backend OPTIONS for the submission port: STARTTLS and the Dovecot user."""
        assert self.submission is not None, "a PostfixServer(submission=...) only"
        assert self.submission_port is not None
        return {
            "host": self.host,
            "port": self.submission_port,
            "use_tls": True,
            "username": self.submission.username,
            "password": self.submission.password,
            "timeout": 10,
            **overrides,
        }

    def log(self) -> str:
        """The log since the instance started, or since :meth:`forget_earlier_tests`."""
        path = self.root / "maillog"
        if not path.exists():
            return ""
        with path.open("rb") as file:
            file.seek(self._log_start)
            return file.read().decode(errors="replace")

    def forget_earlier_tests(self) -> None:
        """Start the log and the Maildir afresh for the next test of a shared instance."""
        path = self.root / "maillog"
        self._log_start = path.stat().st_size if path.exists() else 0
        for message in (self.root / "mail" / "box" / "new").glob("*"):
            message.unlink()

    def wait_for_log(self, text: str, *, count: int = 1, timeout: float = 60.0) -> str:
        """The log once it contains ``text`` ``count`` times (postlogd writes moments later)."""
        deadline = time.monotonic() + timeout
        while (log := self.log()).count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not {count} time(s) in the Postfix log:\n{log[-3000:]}"
                )
            time.sleep(0.05)
        return log

    def assert_proper_pipelining(self) -> None:
        """Postfix found no command sent ahead where RFC 2920 does not allow it."""
        log = self.log()
        assert "improper command pipelining" not in log, log[-3000:]

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
        """Stop Postfix and wait until its master process is gone."""
        pid_file = self.root / "queue" / "pid" / "master.pid"
        pid = int(pid_file.read_text()) if pid_file.exists() else None
        self._postfix("stop")
        deadline = time.monotonic() + 10
        while pid is not None and _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _postfix(self, command: str) -> None:
        completed = subprocess.run(
            [str(POSTFIX), "-c", str(self.root / "conf"), command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, (command, completed.stderr, self.log()[-2000:])

    def _wait_until_listening(self, port: int) -> None:
        import socket

        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"Postfix did not listen on {port}: {self.log()[-2000:]}")


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie that no one reaps counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _postfix_root() -> Path:
    # Not under pytest's tmp_path (mode 0700: the postfix user could not
    # enter it); a short path too, as Postfix's sockets live in the queue.
    return Path(tempfile.mkdtemp(prefix="mailops-pfx-", dir="/tmp"))


@pytest.fixture
def postfix() -> Iterator[PostfixServer]:
    """A Postfix with one plain port (no TLS, no AUTH), for one test."""
    root = _postfix_root()
    try:
        server = PostfixServer(root)
        try:
            yield server
            server.assert_proper_pipelining()
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix_submission_server(smtp_ca: SMTPTestCA) -> Iterator[PostfixServer]:
    """A Postfix with a submission port and its Dovecot, shared by one test module."""
    dovecot: DovecotServer | None = None
    root = _postfix_root()
    try:
        dovecot = start_dovecot(sasl=True)
        assert dovecot.sasl_port is not None
        submission = SubmissionAuth(
            ca=smtp_ca.ca,
            sasl_port=dovecot.sasl_port,
            username=dovecot.username,
            password=dovecot.password,
        )
        server = PostfixServer(root, submission=submission)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if dovecot is not None:
            dovecot.stop()
            shutil.rmtree(dovecot.directory, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postfix_submission(
    postfix_submission_server: PostfixServer, trust_smtp_ca: SMTPTestCA
) -> Iterator[PostfixServer]:
    """The module's Postfix with a submission port; clients trust its certificate.

    The test sees only its own log lines and deliveries.
    """
    postfix_submission_server.forget_earlier_tests()
    yield postfix_submission_server
    postfix_submission_server.assert_proper_pipelining()


# Past smtpd_hard_error_limit (5): Postfix answers the RSET after the fifth
# refusal with 421 and hangs up, between the two deliverable addresses.
REFUSED = [f"nobody{i}@nowhere.invalid" for i in range(7)]
DELIVERABLE = ["alice@example.test", "bob@example.test"]


def send_past_the_error_limit(server: PostfixServer) -> tuple[dict[str, MailLog], str]:
    """Send to refused and deliverable addresses in one batch; the rows by recipient, the log.

    Checks what holds on every port: each deliverable address delivered
    once and ``sent``, each refused one ``failed`` with Postfix's 554.
    """
    summary = send_test_mail(
        from_addresses([*REFUSED[:5], DELIVERABLE[0], *REFUSED[5:], DELIVERABLE[1]]),
        trigger=MailTrigger.COMMAND,
    )
    rows = {row.recipient: row for row in summary.logs()}
    assert {rows[address].status for address in DELIVERABLE} == {MailStatus.SENT}
    assert {(rows[a].status, rows[a].smtp_code) for a in REFUSED} == {(MailStatus.FAILED, 554)}
    assert server.deliveries(2) == {address: 1 for address in DELIVERABLE}
    return rows, server.wait_for_log("too many errors")


@pytest.fixture
def bounce_mailbox() -> Iterator[DovecotServer]:
    """A Dovecot of its own for one test: its Maildir is compared before and after."""
    server = start_dovecot()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def bouncing_postfix(bounce_mailbox: DovecotServer) -> Iterator[PostfixServer]:
    """A Postfix that bounces mail for bounce.test and defers slow.test after accepting it.

    Its reports go to the sender at example.test: into ``bounce_mailbox``.
    """
    root = _postfix_root()
    try:
        server = PostfixServer(root, bounces=bounce_mailbox)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
