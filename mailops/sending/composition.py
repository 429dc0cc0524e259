"""What a test mail says, and the message object that carries it."""

from __future__ import annotations

import email.policy
import re
import socket
import uuid
from collections.abc import Iterable
from datetime import datetime
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.translation import gettext_lazy

if TYPE_CHECKING:
    from mailops.models import MailLog

# Lazy: a test mail speaks the language active when it is composed (the admin
# user's, the command's LANGUAGE_CODE), not the one active at import.
DEFAULT_SUBJECT = gettext_lazy("Test mail from {site} via {mailer}")
DEFAULT_BODY = gettext_lazy(
    "This is a test mail sent by mailops to prove that {site} can send mail.\n"
    "\n"
    "Site: {site}\n"
    "Mailer: {mailer}\n"
    "Sent: {time}\n"
    "\n"
    "If it reached you, the mailer works. Nothing else needs doing."
)


def site_name() -> str:
    """How messages and pages name this site."""
    return str(getattr(settings, "MAILOPS_SITE_NAME", "") or _host_name())


def _host_name() -> str:
    hosts = [h for h in getattr(settings, "ALLOWED_HOSTS", []) if h and h not in {"*", "."}]
    return hosts[0].lstrip(".") if hosts else socket.gethostname()


def default_subject(mailer: str) -> str:
    return DEFAULT_SUBJECT.format(site=site_name(), mailer=mailer)


def default_body(mailer: str, *, when: datetime | None = None) -> str:
    when = timezone.localtime(when or timezone.now())
    return DEFAULT_BODY.format(
        site=site_name(), mailer=mailer, time=when.strftime("%Y-%m-%d %H:%M:%S %Z")
    )


# The Message-ID domain when the From address has none.
FALLBACK_DOMAIN = "mailops.invalid"


def message_id_domain(from_email: str) -> str:
    """The domain of mailops' Message-IDs: the From address's, else ``mailops.invalid``.

    The sender's domain is what receiving servers expect, and it avoids a
    slow FQDN lookup per message.
    """
    return parseaddr(from_email)[1].rpartition("@")[2] or FALLBACK_DOMAIN


def new_message_id(domain: str | None = None) -> str:
    """A unique Message-ID, so the audit row can be matched to the inbox."""
    return make_msgid(idstring="mailops", domain=domain or FALLBACK_DOMAIN)


def user_message_id_parts(batch_id: uuid.UUID, domain: str) -> tuple[str, str]:
    """What goes before and after a user's key in ``<batch.userkey.mailops@domain>``.

    Rows written for a user selection in SQL get their Message-ID from this
    scheme (unique per batch and user) instead of :func:`new_message_id`.
    """
    return f"<{batch_id.hex}.", f".mailops@{domain}>"


def build_message(
    *, to: str, subject: str, body: str, from_email: str, message_id: str, mailer: str
) -> EmailMessage:
    return EmailMessage(
        subject=subject,
        body=body,
        from_email=from_email,
        to=[to],
        headers={"Message-ID": message_id, "X-Mailops-Mailer": mailer},
    )


# Stand-ins rendered into a message template, then swapped per recipient.
_TO_SLOT = "recipient@mailops-slot.invalid"
_ID_SLOT = "<message-id@mailops-slot.invalid>"
# Values the email package writes back unchanged and unquoted; anything else
# (non-ASCII, quoted local parts, odd Message-IDs) takes the full build. Such
# an address also needs no parsing in the SMTP envelope (sending.smtp_transaction).
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\Z"
)
_PLAIN_MESSAGE_ID = re.compile(r"<[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z")


class MessageTemplate:
    """The wire bytes of one test mail, built once; To, Message-ID and Date set per recipient.

    Building a message with Django's email API costs more than sending it
    over a local connection, and every row of a batch shares subject, body
    and sender. So the message is built once, through :func:`build_message`
    and the policy Django's SMTP backend uses, with stand-ins in To and
    Message-ID; :meth:`render` swaps in a recipient's values and the current
    time in the Date header's time zone: the bytes Django would send.
    """

    def __init__(self, *, subject: str, body: str, from_email: str, mailer: str) -> None:
        message = build_message(
            to=_TO_SLOT,
            subject=subject,
            body=body,
            from_email=from_email,
            message_id=_ID_SLOT,
            mailer=mailer,
        ).message(policy=email.policy.SMTP)
        # Django chose the zone (UTC, or local time with EMAIL_USE_LOCALTIME).
        self._zone = message["Date"].datetime.tzinfo
        data = message.as_bytes()
        head, separator, self._content = data.partition(b"\r\n\r\n")
        self._lines = head.split(b"\r\n")
        try:
            self._to_at = self._lines.index(b"To: " + _TO_SLOT.encode())
            self._id_at = self._lines.index(b"Message-ID: " + _ID_SLOT.encode())
            self._date_at = next(
                i for i, line in enumerate(self._lines) if line.startswith(b"Date: ")
            )
        except (ValueError, StopIteration):
            # The header block looks different from what the stand-ins expect.
            self._to_at = self._id_at = self._date_at = -1
        self._separator = separator
        self._date: tuple[datetime | None, bytes] = (None, b"")
        self._max_line = email.policy.SMTP.max_line_length or 998

    def render(self, *, to: str, message_id: str) -> bytes | None:
        """The message for one recipient, or ``None`` if it needs the full build."""
        if (
            self._to_at < 0
            or not PLAIN_ADDRESS.match(to)
            or not _PLAIN_MESSAGE_ID.match(message_id)
        ):
            return None
        to_line = b"To: " + to.encode("ascii")
        id_line = b"Message-ID: " + message_id.encode("ascii")
        # Longer lines would be folded by the email package.
        if max(len(to_line), len(id_line)) > self._max_line:
            return None
        lines = self._lines.copy()
        lines[self._to_at] = to_line
        lines[self._id_at] = id_line
        lines[self._date_at] = self._date_line()
        return b"\r\n".join(lines) + self._separator + self._content

    def _date_line(self) -> bytes:
        """The Date header for now; formatted once a second (its resolution), not per message."""
        now = datetime.now(self._zone).replace(microsecond=0)
        # One tuple, swapped whole: threads sending the same chunk share it.
        second, line = self._date
        if second != now:
            line = b"Date: " + format_datetime(now).encode()
            self._date = (now, line)
        return line


# (envelope sender, template) per (subject, body, from); None: needs the full build.
Templates = dict[tuple[str, str, str], tuple[str, MessageTemplate] | None]


def chunk_templates(
    backend: Any, rows: Iterable[MailLog], *, mailer: str, previous: Templates | None = None
) -> Templates:
    """A chunk's message built once per (subject, body, from), for Django's SMTP ``backend``.

    ``previous``: the last chunk's templates, taken over where a key recurs
    (the chunks of a batch share one message): only the chunk's own are kept.
    """
    templates: Templates = {}
    previous = previous or {}
    for row in rows:
        key = (row.subject, row.body, row.from_email)
        if key in templates:
            continue
        if key in previous:
            templates[key] = previous[key]
            continue
        try:
            sender = backend.prep_address(row.from_email)
            template = MessageTemplate(
                subject=row.subject, body=row.body, from_email=row.from_email, mailer=mailer
            )
        except ValueError:
            # Bad input: the full build raises it again, and it is recorded there.
            templates[key] = None
        else:
            templates[key] = (sender, template)
    return templates


def wire_message(
    backend: Any, row: MailLog, templates: Templates, *, mailer: str
) -> tuple[str, str, bytes] | None:
    """Envelope and bytes of ``row``'s message; ``None`` where no template was built.

    Raises ``ValueError`` for a message that cannot be built.
    """
    key = (row.subject, row.body, row.from_email)
    if key not in templates:
        # Templates exist only for Django's own SMTP backend.
        return None
    cached = templates[key]
    if cached is not None:
        sender, template = cached
        data = template.render(to=row.recipient, message_id=row.message_id)
        if data is not None:
            return sender, row.recipient, data
    # What the backend's _send() would send, step by step (see smtp_transaction).
    message = build_message(
        to=row.recipient,
        subject=row.subject,
        body=row.body,
        from_email=row.from_email,
        message_id=row.message_id,
        mailer=mailer,
    )
    return (
        backend.prep_address(message.from_email),
        backend.prep_address(row.recipient),
        message.message(policy=email.policy.SMTP).as_bytes(),
    )
