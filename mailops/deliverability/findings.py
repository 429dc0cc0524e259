"""What the doctor reports: one :class:`Finding` per problem or advice, with a stable id.

Every id is listed in :data:`CATALOGUE` (and in the doctor findings reference)
with its level, so a message's level cannot drift from the documentation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def label(self) -> str:
        """The level as a reader sees it, translated (the value stays the id in JSON)."""
        return str(LEVEL_LABELS[self])


LEVEL_LABELS = {
    Level.ERROR: gettext_lazy("error"),
    Level.WARNING: gettext_lazy("warning"),
    Level.INFO: gettext_lazy("info"),
}


# id: (level, what it means) -- docs/reference/doctor-findings.md states these levels
# (tests/test_docs_reference.py checks it).
CATALOGUE: dict[str, tuple[Level, str]] = {
    "mailops.D001": (Level.ERROR, "the From address has no usable domain"),
    "mailops.D002": (Level.ERROR, "DNS could not be checked (timeout or server failure)"),
    "mailops.D003": (Level.ERROR, "the domain does not exist (NXDOMAIN)"),
    "mailops.D004": (Level.INFO, "the mailer delivers nowhere: only the domain's DNS is checked"),
    "mailops.D010": (Level.WARNING, "no MX record: replies and bounces go nowhere"),
    "mailops.D020": (Level.ERROR, "no SPF record"),
    "mailops.D021": (Level.ERROR, "more than one SPF record (permanent error)"),
    "mailops.D022": (Level.ERROR, "SPF syntax error"),
    "mailops.D023": (Level.ERROR, "SPF needs more than 10 DNS lookups (permanent error)"),
    "mailops.D024": (Level.ERROR, "SPF include loop"),
    "mailops.D025": (Level.ERROR, "SPF does not authorise the mailer"),
    "mailops.D026": (Level.ERROR, "an SPF include or redirect points at a domain without SPF"),
    "mailops.D027": (Level.WARNING, "SPF authorises the whole internet (+all)"),
    "mailops.D028": (Level.WARNING, "SPF neither passes nor fails the relay (softfail/neutral)"),
    "mailops.D029": (Level.INFO, "SPF authorisation of this mailer not checked"),
    "mailops.D030": (Level.WARNING, "SPF does not include the provider's documented include"),
    "mailops.D031": (Level.ERROR, "SPF has more than 2 void DNS lookups (permanent error)"),
    "mailops.D040": (Level.WARNING, "no DMARC record"),
    "mailops.D041": (Level.ERROR, "DMARC record invalid or more than one"),
    "mailops.D042": (Level.INFO, "DMARC policy is p=none (monitoring only)"),
    "mailops.D043": (Level.WARNING, "nothing shown to align with the From domain for DMARC"),
    "mailops.D050": (Level.INFO, "no DKIM selector configured: DKIM not checked"),
    "mailops.D051": (Level.ERROR, "DKIM selector has no record"),
    "mailops.D052": (Level.ERROR, "DKIM record has no usable public key"),
    "mailops.D053": (Level.WARNING, "DKIM RSA key shorter than 2048 bits"),
    "mailops.D060": (Level.WARNING, "Gmail will rewrite the From address"),
}


@dataclass(frozen=True)
class Finding:
    """One line of the report: ``id``, ``level``, a one-line ``message``, a ``hint``."""

    id: str
    message: str
    hint: str
    level: Level = field(init=False)

    def __post_init__(self) -> None:
        # The level comes from the catalogue, so it always matches the findings reference.
        object.__setattr__(self, "level", CATALOGUE[self.id][0])

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["level"] = str(self.level)
        return {key: data[key] for key in ("id", "level", "message", "hint")}


@dataclass
class MailerReport:
    """The findings for one mailer's From domain."""

    alias: str
    from_email: str
    domain: str
    findings: list[Finding] = field(default_factory=list)
    # DNS queries sent, the SPF evaluator's (pyspf) included.
    queries: int = 0

    def add(self, finding_id: str, message: str, hint: str) -> None:
        self.findings.append(Finding(finding_id, message, hint))

    def count(self, level: Level) -> int:
        return sum(1 for finding in self.findings if finding.level == level)

    @property
    def has_errors(self) -> bool:
        return self.count(Level.ERROR) > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "from_email": self.from_email,
            "domain": self.domain,
            "findings": [finding.as_dict() for finding in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MailerReport:
        report = cls(data["alias"], data["from_email"], data["domain"])
        for item in data["findings"]:
            report.add(item["id"], item["message"], item["hint"])
        return report
