"""mailops in the Django admin: the mail log, its pages, and the user-admin action.

Importing this package (Django's admin autodiscovery does) registers
:class:`MailLogAdmin` and :class:`SuppressionAdmin` on the default site. A project with its own
``AdminSite`` registers it there too: ``my_site.register(MailLog, MailLogAdmin)``.

Imports run one way: these modules call :mod:`mailops.services`,
:mod:`mailops.sending`, :mod:`mailops.mailers` and the models; nothing
outside ``mailops.admin`` imports them.
"""

from mailops.admin.maillog import MailLogAdmin
from mailops.admin.paginator import SummaryPaginator
from mailops.admin.suppression import SuppressionAdmin
from mailops.admin.users import SendTestMailAdminMixin, UserImportExportMixin

__all__ = [
    "MailLogAdmin",
    "SendTestMailAdminMixin",
    "SummaryPaginator",
    "SuppressionAdmin",
    "UserImportExportMixin",
]
