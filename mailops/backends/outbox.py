"""A development mailer that writes one ``.eml`` file per message.

Django's file backend appends every message of a connection to one ``.log``
file; one standard ``.eml`` file per message opens directly in any mail
client, which is what a newcomer checking "did it send?" wants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.mail import EmailMessage, InvalidMailer
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from django.utils.crypto import get_random_string

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EmailBackend(BaseEmailBackend):
    def __init__(self, *, file_path: str | None = None, **kwargs: Any) -> None:
        alias = kwargs.get("alias")
        super().__init__(**kwargs)
        if not file_path:
            raise InvalidMailer("OPTIONS must define 'file_path'.", alias=alias)
        self.directory = Path(file_path).resolve()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidMailer(
                f"Could not create 'file_path' {self.directory}: {error.strerror}",
                alias=alias,
            ) from error

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            self._path_for(message).write_bytes(message.message().as_bytes())
            sent += 1
        return sent

    def _path_for(self, message: EmailMessage) -> Path:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        to = _UNSAFE.sub("_", message.recipients()[0])[:60]
        return self.directory / f"{stamp}-{to}-{get_random_string(6)}.eml"
