"""Running ``sendtestmail`` as a user would, and reading a log row whole, for the tests."""

from __future__ import annotations

from io import StringIO

from django.core.management import CommandError, call_command

from mailops.models import MailLog


def run_sendtestmail(*args: str) -> tuple[int, str, str]:
    """Run the command; return (exit status, stdout, stderr or the CommandError's text)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("sendtestmail", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def all_columns(log: MailLog) -> str:
    """Every column of ``log`` as text, to show a secret is in none of them."""
    return " ".join(str(getattr(log, f.attname)) for f in MailLog._meta.concrete_fields)
