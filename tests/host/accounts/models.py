"""The host's user model: nothing like ``auth.User`` but what Django requires.

UUID key, ``handle`` to sign in, ``contact_email`` for mail, a display name
instead of first/last names. ``is_staff``/``is_active`` exist (the console
and ``sendtestmail --staff`` use them); ``Guest`` below has neither, for the
checks that say which mailops feature needs them.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager["Member"]):
    def create_user(
        self, handle: str, contact_email: str = "", password: str | None = None, **fields: Any
    ) -> Member:
        member = self.model(
            handle=handle, contact_email=self.normalize_email(contact_email), **fields
        )
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(
        self, handle: str, contact_email: str = "", password: str | None = None, **fields: Any
    ) -> Member:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(handle, contact_email, password, **fields)


class Member(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    handle = models.CharField(max_length=40, unique=True)
    contact_email = models.EmailField(blank=True)
    display_name = models.CharField(max_length=100, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "contact_email"
    REQUIRED_FIELDS = ["contact_email"]

    objects = MemberManager()

    def __str__(self) -> str:
        return self.handle


class Guest(AbstractBaseUser):
    """A user model without is_staff/is_active fields (checks only; never AUTH_USER_MODEL)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    nickname = models.CharField(max_length=40, unique=True)
    mail = models.EmailField(blank=True)

    USERNAME_FIELD = "nickname"
    EMAIL_FIELD = "mail"


class SupportTicket(models.Model):
    """A host's own record that cites a mail-log row, as a stranger would write it.

    ``related_name="+"`` (no reverse accessor) and ``SET_NULL``: purging the
    row must unlink the ticket, not fail on the foreign key.
    """

    subject = models.CharField(max_length=100)
    mail = models.ForeignKey(
        "mailops.MailLog", null=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.subject
