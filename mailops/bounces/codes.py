"""Enhanced mail status codes (RFC 3463, RFC 7372) in words, for the log's entry page.

A code is ``class.subject.detail``: class 2 success, 4 a temporary failure
(the sender's server may try again), 5 a permanent one. The words below
say what the receiving side meant, as a person would put it.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

_CODE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")

# subject.detail -> what it means (RFC 3463 §3, RFC 7372 for x.7.20-x.7.29).
DETAILS: dict[str, Promise] = {
    "1.0": _("there is a problem with the address"),
    "1.1": _("the mailbox does not exist"),
    "1.2": _("the recipient's domain does not exist or takes no mail"),
    "1.3": _("the address is not valid"),
    "1.4": _("the address is ambiguous"),
    "1.6": _("the mailbox has moved and has no forwarding address"),
    "1.10": _("the recipient's domain accepts no mail (null MX)"),
    "2.0": _("there is a problem with the mailbox"),
    "2.1": _("the mailbox is disabled and accepts no messages"),
    "2.2": _("the mailbox is full"),
    "2.3": _("the message is larger than the mailbox accepts"),
    "2.4": _("a mailing list could not be expanded"),
    "3.0": _("its mail system has a problem"),
    "3.1": _("its mail system is full"),
    "3.2": _("its mail system accepts no messages at the moment"),
    "3.4": _("the message is larger than its mail system accepts"),
    "4.0": _("the message could not be routed"),
    "4.1": _("the recipient's server did not answer"),
    "4.2": _("the connection to the recipient's server broke"),
    "4.3": _("a name server lookup failed"),
    "4.4": _("no route to the recipient's server was found"),
    "4.6": _("the message went round in a loop"),
    "4.7": _("the message was too long in the queue"),
    "5.0": _("the conversation with its server failed"),
    "5.3": _("the message had too many recipients"),
    "6.0": _("the message's content could not be handled"),
    "6.3": _("the message's content could not be converted"),
    "7.0": _("the message was refused by its security or policy rules"),
    "7.1": _("the sender is not allowed to deliver there (refused by policy, often as spam)"),
    "7.2": _("the sender is not allowed to send to this mailing list"),
    "7.7": _("the message failed an integrity check"),
    "7.20": _("the message had no valid DKIM signature"),
    "7.23": _("the message failed the SPF check"),
    "7.25": _("the sending server's address has no matching reverse DNS name"),
    "7.26": _("the message failed the sender authentication checks (SPF, DKIM, DMARC)"),
    "7.27": _("the sender's domain accepts no mail back (null MX)"),
}

# subject -> words for a detail not listed above.
SUBJECTS: dict[str, Promise] = {
    "0": _("the message was refused"),
    "1": DETAILS["1.0"],
    "2": DETAILS["2.0"],
    "3": DETAILS["3.0"],
    "4": DETAILS["4.0"],
    "5": DETAILS["5.0"],
    "6": DETAILS["6.0"],
    "7": DETAILS["7.0"],
}


def is_status_code(text: str) -> bool:
    """Whether ``text`` is an enhanced status code such as ``5.1.1``."""
    return bool(_CODE.match(text))


def in_words(code: str) -> str:
    """What ``code`` means, e.g. "the recipient's server said the mailbox does not exist".

    A temporary code (4.x.x) says the server will try again; an unknown or
    malformed code gives a plain sentence rather than nothing.
    """
    match = _CODE.match(code.strip())
    if match is None:
        return gettext("the recipient's server refused the message")
    klass, subject, detail = match.groups()
    words = DETAILS.get(f"{subject}.{detail}") or SUBJECTS.get(subject) or SUBJECTS["0"]
    if klass == "5":
        return gettext("the recipient's server said %(words)s") % {"words": words}
    if klass == "4":
        return gettext(
            "the recipient's server said, for now, %(words)s; delivery is being retried"
        ) % {"words": words}
    return gettext("the recipient's server reported success")
