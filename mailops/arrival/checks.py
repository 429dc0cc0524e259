"""``manage.py check`` for ``MAILOPS["MAILBOXES"]`` (proof of arrival).

Ids ``mailops.E030``/``E031``/``W030``: a malformed entry, a mailbox for a
mailer ``MAILERS`` does not define, a password sent without TLS.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.utils.translation import gettext as _

from mailops.arrival.mailboxes import MailboxURLError, mailbox_for
from mailops.conf import get_setting
from mailops.mailers.registry import mailer_aliases

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def check_mailboxes(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    configured = get_setting("MAILBOXES") or {}
    if not isinstance(configured, dict):
        return [
            checks.Error(
                _('MAILOPS["MAILBOXES"] must be a dict of {alias: mailbox}.'),
                hint=_(
                    'e.g. {"default": {"host": "imap.example.com", "username": ..., '
                    '"password": ...}}'
                ),
                id="mailops.E030",
            )
        ]
    for alias in sorted(configured):
        if alias not in mailer_aliases():
            found.append(
                checks.Error(
                    _(
                        'MAILOPS["MAILBOXES"] has a mailbox for %(alias)r, which MAILERS does not '
                        "define."
                    )
                    % {"alias": alias},
                    hint=_("Name the mailer whose test mails land in that mailbox."),
                    id="mailops.E031",
                )
            )
        try:
            mailbox = mailbox_for(alias)
        except MailboxURLError as error:
            found.append(
                checks.Error(
                    str(error),
                    hint=_(
                        "Give host, username and password (port, ssl and folders are "
                        "optional); see mailops.E030 in the checks reference."
                    ),
                    id="mailops.E030",
                )
            )
            continue
        if mailbox is not None and not mailbox.ssl and mailbox.host not in LOOPBACK:
            found.append(
                checks.Warning(
                    _("The mailbox of %(alias)r sends its IMAP password without TLS to %(host)s.")
                    % {"alias": alias, "host": mailbox.host},
                    hint=_("Use imaps:// (port 993), or ssl=True."),
                    id="mailops.W030",
                )
            )
    return found
