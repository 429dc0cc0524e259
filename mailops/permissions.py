"""mailops' permission names, as ``user.has_perm`` takes them, and who may do what.

The codenames are declared on ``MailLog.Meta.permissions`` (plus Django's
``view_maillog``/``change_maillog``); every check in the admin, the views and
the commands uses these constants, so a name is spelled once.
"""

from __future__ import annotations

from typing import Any

SEND_TEST_MAIL = "mailops.send_test_mail"
# The same permission as admin actions name it (``has_<name>_permission``).
SEND_TEST_MAIL_ACTION = "send_test_mail"
EXPORT_MAILLOG = "mailops.export_maillog"
VIEW_MAILLOG = "mailops.view_maillog"
CHANGE_MAILLOG = "mailops.change_maillog"
# The suppression list: add, remove and import entries, and send past it.
MANAGE_SUPPRESSION = "mailops.manage_suppression"
VIEW_SUPPRESSION = "mailops.view_suppression"

# Reading the mail log (list, entries, batch pages): Django's view or change permission.
READ_MAILLOG = (VIEW_MAILLOG, CHANGE_MAILLOG)
# The Mailers page: whoever may read the log or send test mail.
SEE_MAILERS = (VIEW_MAILLOG, SEND_TEST_MAIL)


def has_any(user: Any, permissions: tuple[str, ...]) -> bool:
    """Whether ``user`` holds at least one of ``permissions``."""
    return any(user.has_perm(permission) for permission in permissions)
