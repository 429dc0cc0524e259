"""Which recipients are suppressed: in Python for address lists, in SQL for user selections.

Both sides key an address the same way (:func:`~mailops.suppression.models.normalise_address`
in Python, ``LOWER(TRIM(...))`` in SQL) and word the rejection the same way
(:func:`~mailops.suppression.models.rejection_reason` and :func:`rejection_text`),
so a suppressed user is logged alike whether the batch came from typed
addresses or from "select all" users.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.db.models import (
    Case,
    CharField,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Concat, Lower, NullIf, Trim, TruncDate

from mailops.conf import stored_language
from mailops.recipients import ADDRESS_ANNOTATION, Recipient, email_field_name
from mailops.suppression.models import (
    REASON_TEXT,
    Suppression,
    SuppressionQuerySet,
    normalise_address,
    rejection_template,
)

# Addresses looked up per query when marking an address list.
LOOKUP_CHUNK = 500


def active_for(addresses: Iterable[str]) -> dict[str, Suppression]:
    """The active entries for ``addresses``, by normalised address (one query)."""
    keys = {normalise_address(address) for address in addresses if address}
    if not keys:
        return {}
    return {entry.address: entry for entry in Suppression.objects.active().filter(address__in=keys)}


def mark_suppressed(recipients: Iterable[Recipient]) -> Iterator[Recipient]:
    """``recipients`` with each suppressed one turned into a rejected one.

    A streaming generator: one query per :data:`LOOKUP_CHUNK` recipients, so
    a huge list stays out of memory. Invalid recipients pass unchanged.
    """
    iterator = iter(recipients)
    while chunk := list(islice(iterator, LOOKUP_CHUNK)):
        found = active_for(r.address for r in chunk if r.valid)
        for recipient in chunk:
            entry = found.get(normalise_address(recipient.address)) if recipient.valid else None
            if entry is None:
                yield recipient
            else:
                yield dataclasses.replace(recipient, error=entry.rejection_reason, suppressed=True)


# --- user selections, in SQL ---------------------------------------------------------


def _matching(outer: Any) -> SuppressionQuerySet:
    """Active entries whose address is the outer query's ``outer`` expression, normalised."""
    return Suppression.objects.active().filter(address=Lower(outer))


def without_suppressed(users: QuerySet[Any]) -> QuerySet[Any]:
    """``users`` (any user queryset) less those whose address is suppressed.

    A filter the database applies: the queryset stays lazy, and whatever
    later annotates or counts it (``INSERT ... SELECT``, a pending batch's
    ids) sees only users who may be sent to. ``NOT IN`` (a subquery the
    database reads once), not a correlated ``NOT EXISTS``: SQLite ran the
    latter once per user. A user without an address is left out too; such
    users get their own rejected rows first.
    """
    key = Lower(Trim(F(email_field_name())))
    return users.alias(_mailops_key=key).exclude(_mailops_key__in=_active_addresses())


def _active_addresses() -> QuerySet[Any]:
    return Suppression.objects.active().order_by().values("address")


def only_suppressed(users: QuerySet[Any]) -> QuerySet[Any]:
    """The users of an ``annotate_address`` queryset whose address is suppressed."""
    key = Lower(F(ADDRESS_ANNOTATION))
    return users.alias(_mailops_key=key).filter(_mailops_key__in=_active_addresses())


def suppressed_rows(logs: QuerySet[Any]) -> QuerySet[Any]:
    """The ``MailLog`` rows of ``logs`` whose recipient is suppressed."""
    key = Lower(Trim(F("recipient")))
    return logs.alias(_mailops_key=key).filter(_mailops_key__in=_active_addresses())


def rejection_text() -> Any:
    """``rejection_reason()`` of an entry, as an SQL expression over ``Suppression``.

    The same words in the site's language: the translated template is cut at
    its placeholders (in whatever order the language puts them), and the
    date and the reason are filled in by the database.
    """
    with stored_language():
        template = rejection_template()
        reason_text = Case(
            *[When(reason=reason, then=Value(str(text))) for reason, text in REASON_TEXT.items()],
            default=F("reason"),
            output_field=CharField(),
        )
    slots = {
        # TruncDate uses the current time zone, as timezone.localtime() does.
        "since": Cast(TruncDate("created_at"), CharField()),
        "reason": Coalesce(NullIf(F("detail"), Value("")), reason_text),
    }
    parts: list[Any] = []
    for index, piece in enumerate(re.split(r"%\((since|reason)\)s", template)):
        if index % 2:
            parts.append(slots[piece])
        elif piece:
            parts.append(Value(piece.replace("%%", "%")))
    return Concat(*parts, output_field=CharField())


def rejection_subquery() -> Subquery:
    """The rejection text of the user's entry (for ``annotate_address`` users)."""
    entries = _matching(OuterRef(ADDRESS_ANNOTATION)).order_by()
    return Subquery(entries.annotate(_text=rejection_text()).values("_text")[:1])
