"""Who a test mail goes to: addresses and users, validated before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Trim
from django.utils.translation import gettext as _

from mailops.conf import stored_language


@dataclass(frozen=True)
class Recipient:
    """One intended recipient; ``error`` set means it will be logged as rejected."""

    address: str
    # The user's primary key, whatever its type (a custom user model may use UUIDs).
    user_id: Any = None
    error: str = ""
    # The address is on the suppression list (``error`` says since when, and why).
    suppressed: bool = False

    @property
    def valid(self) -> bool:
        return not self.error


# RFC 5321 §4.5.3.1: a path holds at most 256 octets with its brackets, a
# local part at most 64. Checked before anything reaches the database.
MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64


def check_address(address: str) -> str:
    """The reason ``address`` cannot be used, or ``""`` if it can.

    The reason is stored in the rejected row: written in the site's language.
    """
    # Delivery checks every row: the language is switched (which costs more
    # than the check) only to word a problem.
    if not _address_problem(address):
        return ""
    with stored_language():
        return _address_problem(address)


def _address_problem(address: str) -> str:
    if not address.strip():
        return _("empty address")
    if any(char in address for char in "\r\n"):
        return _("address contains a line break")
    if len(address) > MAX_ADDRESS_LENGTH:
        return _(
            "address is %(length)d characters long; at most %(limit)d are allowed (RFC 5321)"
        ) % {"length": len(address), "limit": MAX_ADDRESS_LENGTH}
    local_part = address.rpartition("@")[0]
    if len(local_part) > MAX_LOCAL_PART_LENGTH:
        return _(
            "the part before @ is %(length)d characters long; at most %(limit)d are allowed "
            "(RFC 5321)"
        ) % {"length": len(local_part), "limit": MAX_LOCAL_PART_LENGTH}
    try:
        validate_email(address)
    except ValidationError:
        return _("not a valid email address: %(address)r") % {"address": address}
    return ""


def from_addresses(addresses: Iterable[str]) -> list[Recipient]:
    return [Recipient(address=a.strip(), error=check_address(a.strip())) for a in addresses]


# The fields ``staff_recipients`` filters on; a custom user model may lack them.
STAFF_FIELDS = ("is_staff", "is_active")


def has_field(model: type[models.Model], name: str) -> bool:
    """Whether ``name`` is a concrete field of ``model`` (not a property or class default)."""
    try:
        return bool(getattr(model._meta.get_field(name), "concrete", False))
    except FieldDoesNotExist:
        return False


def email_field_name() -> str:
    return get_user_model().get_email_field_name()


# "A user has an address" is decided here only: the email field, trimmed, not empty.
# In Python by address_of(), in SQL by the annotation below (both trim spaces only).
ADDRESS_ANNOTATION = "_mailops_address"
HAS_NO_ADDRESS = Q(**{f"{ADDRESS_ANNOTATION}__isnull": True}) | Q(**{ADDRESS_ANNOTATION: ""})


def address_of(value: Any) -> str:
    """A user's address as mailops uses it: trimmed; ``""`` means the user has none."""
    # Spaces only, as SQL's TRIM(): any other white space makes the address invalid.
    return str(value or "").strip(" ")


def no_address_error(username: Any) -> str:
    """The reason logged for a user without an address (stored: the site's language)."""
    with stored_language():
        return no_address_template() % {"username": username}


def no_address_template() -> str:
    """The no-address reason with a ``%(username)s`` slot, in the active language.

    The bulk writer (``sending.rows``) builds the same text in SQL around the username.
    """
    return _("user '%(username)s' has no email address")


def annotate_address(users: QuerySet[Any]) -> QuerySet[Any]:
    """``users`` with their trimmed address as ``_mailops_address`` (unordered)."""
    return users.order_by().annotate(**{ADDRESS_ANNOTATION: Trim(F(email_field_name()))})


def with_address(users: QuerySet[Any]) -> QuerySet[Any]:
    """The users of an :func:`annotate_address` queryset who have an address."""
    return users.exclude(HAS_NO_ADDRESS)


def without_address(users: QuerySet[Any]) -> QuerySet[Any]:
    """The users of an :func:`annotate_address` queryset who have none."""
    return users.filter(HAS_NO_ADDRESS)


def from_users(users: QuerySet[Any], *, chunk_size: int = 2000) -> Iterator[Recipient]:
    """One recipient per user, streamed so a huge selection stays out of memory.

    Users without an address become rejected recipients linked to the user.
    """
    model = get_user_model()
    field = email_field_name()
    rows = users.order_by("pk").values_list("pk", model.USERNAME_FIELD, field)
    for pk, username, value in rows.iterator(chunk_size=chunk_size):
        address = address_of(value)
        if not address:
            yield Recipient(address="", user_id=pk, error=no_address_error(username))
        else:
            yield Recipient(address=address, user_id=pk, error=check_address(address))


def from_user_lookups(lookups: Iterable[str]) -> list[Recipient]:
    """Resolve ``--user`` values: a username, or an email address of exactly one user."""
    model = get_user_model()
    field = email_field_name()
    recipients: list[Recipient] = []
    for lookup in lookups:
        matches = list(
            model._default_manager.filter(
                Q(**{model.USERNAME_FIELD: lookup}) | Q(**{f"{field}__iexact": lookup})
            ).values_list("pk", field)[:2]
        )
        if not matches:
            with stored_language():
                error = _("no user %(lookup)r") % {"lookup": lookup}
            recipients.append(Recipient(address=lookup, error=error))
        elif len(matches) > 1:
            with stored_language():
                error = _("%(lookup)r matches more than one user") % {"lookup": lookup}
            recipients.append(Recipient(address=lookup, error=error))
        else:
            pk, value = matches[0]
            address = address_of(value)
            error = no_address_error(lookup) if not address else check_address(address)
            recipients.append(Recipient(address=address or lookup, user_id=pk, error=error))
    return recipients


def staff_recipients() -> Iterator[Recipient]:
    """Every active staff user who has an email address.

    Raises ``ImproperlyConfigured`` if the user model has no ``is_staff`` or
    ``is_active`` field to tell who that is (``manage.py check``: W010).
    """
    model = get_user_model()
    missing = [name for name in STAFF_FIELDS if not has_field(model, name)]
    if missing:
        raise ImproperlyConfigured(
            _(
                "The user model %(model)s has no %(fields)s field, so there is no telling who "
                "is active staff; name recipients with --user instead."
            )
            % {"model": model._meta.label, "fields": " or ".join(missing)}
        )
    staff = model._default_manager.filter(is_staff=True, is_active=True)
    return from_users(with_address(annotate_address(staff)))
