"""Translation helpers: the language of text that is stored, not shown once."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation


def stored_language() -> translation.override:
    """Activate the site's ``LANGUAGE_CODE`` for text written into a row.

    A row's reason (``MailLog.error``, a connection check's subject) is written
    once and read later by every admin, by exports and by commands. It is
    written in the site's language, not in the language of whoever happened to
    trigger the send (a German admin's request, an English worker): the same
    failure then reads the same whichever path recorded it, and the worker, the
    commands and the task queue, which have no request, already speak
    ``LANGUAGE_CODE``. The labels around it are translated when shown.
    """
    return translation.override(settings.LANGUAGE_CODE)
