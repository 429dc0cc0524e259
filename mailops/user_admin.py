"""Where user admins import the send-test-mail mixins from: :mod:`mailops.admin.users`."""

from mailops.admin.users import SendTestMailAdminMixin, UserImportExportMixin

__all__ = ["SendTestMailAdminMixin", "UserImportExportMixin"]
