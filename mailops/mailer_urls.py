"""Where settings import the mailer-URL parser from (it lives in ``mailops.mailers.environ``)."""

from mailops.mailers.environ import (
    MailerEnvironment,
    MailerURLError,
    gmail_entry,
    mailers_from_environ,
    parse_mailer_url,
)

__all__ = [
    "MailerEnvironment",
    "MailerURLError",
    "gmail_entry",
    "mailers_from_environ",
    "parse_mailer_url",
]
