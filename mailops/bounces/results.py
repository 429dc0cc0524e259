"""What a ``mailbounces`` run found: one line per report (and recipient), one run per mailbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import ngettext

# Line kinds besides the MailEventTypes (bounced, deferred, complained).
AUTO_REPLY_LINE = "auto_reply"
UNREADABLE_LINE = "unreadable"


@dataclass
class ReportLine:
    """What one report (or one recipient of it) did to the log."""

    folder: str
    uid: int
    kind: str
    recipient: str = ""
    dsn_status: str = ""
    diagnostic: str = ""
    remote_mta: str = ""
    log_id: int | None = None
    matched_by: str = ""
    # The row's status after the report (empty when no row matched).
    status: str = ""
    # Whether the report changed the row's status.
    changed: bool = False
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "uid": self.uid,
            "kind": self.kind,
            "recipient": self.recipient,
            "dsn_status": self.dsn_status,
            "diagnostic": self.diagnostic,
            "remote_mta": self.remote_mta,
            "log_id": self.log_id,
            "matched_by": self.matched_by,
            "status": self.status,
            "changed": self.changed,
            "note": self.note,
        }


@dataclass
class MailboxRun:
    """One mailbox read: what it held that was new, and what that changed."""

    mailer: str
    mailbox: str
    dry_run: bool
    messages: int = 0
    moved: int = 0
    lines: list[ReportLine] = field(default_factory=list)
    # Why the mailbox could not be read (to the end); empty when it was.
    error: str = ""

    @property
    def unreadable(self) -> list[ReportLine]:
        return [line for line in self.lines if line.kind == UNREADABLE_LINE]

    @property
    def ok(self) -> bool:
        """Read to the end, every report understood."""
        return not self.error and not self.unreadable

    @property
    def failure(self) -> str:
        """Why the run is not :attr:`ok`, in words (translated); empty when it is."""
        if self.error:
            return self.error
        count = len(self.unreadable)
        if not count:
            return ""
        return ngettext(
            "%(count)d message could not be read",
            "%(count)d messages could not be read",
            count,
        ) % {"count": count}

    def as_dict(self) -> dict[str, Any]:
        return {
            "mailer": self.mailer,
            "mailbox": self.mailbox,
            "dry_run": self.dry_run,
            "messages_read": self.messages,
            "moved": self.moved,
            "error": self.error or None,
            "reports": [line.as_dict() for line in self.lines],
        }
