"""What points at rows a purge deletes: each foreign key's ``on_delete``, applied in SQL.

Django's ``QuerySet.delete()`` loads every row it deletes (and every row a
``CASCADE`` reaches) into Python to send signals and to follow further
relations. A purge of a million log rows cannot afford that beside live
sending, so this module does the same work in a few statements, model by
model down the relations. :func:`release_orphans` runs after a batch's rows
are deleted (foreign keys are checked at commit) and finds what pointed at
them by the batch's key range (``... WHERE log_id BETWEEN 1 AND 5000 AND
NOT EXISTS (the row)``, read from the foreign key's index);
:func:`release_dependants` names rows still there by a subquery
(``... WHERE event_id IN (SELECT id FROM ...)``):

- ``CASCADE``: the pointing rows' own dependants first, then one ``DELETE``;
- ``SET_NULL`` / ``SET_DEFAULT``: one ``UPDATE``;
- ``DO_NOTHING`` and the database's own ``DB_*`` actions: left to the database.

A model that needs Python to be deleted (``pre_delete``/``post_delete``
receivers, a generic relation, ``PROTECT``, ``RESTRICT``, ``SET(...)``, a
cycle of cascades) is handed to Django's own deletion instead, with its
signals and its errors, for that relation only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef, QuerySet, signals
from django.db.models.deletion import SKIP_COLLECTION, get_candidate_relations_to_delete

# What SQL does without loading rows (the database's own DB_* actions need nothing).
_IN_SQL = frozenset([models.CASCADE, models.SET_NULL, models.SET_DEFAULT, *SKIP_COLLECTION])


def _relations(model: type[models.Model]) -> list[Any]:
    # The relations Django's own deletion follows, hidden ones included
    # (related_name="+", which _meta.related_objects leaves out).
    options: Any = model._meta
    return list(get_candidate_relations_to_delete(options))


def deletes_in_sql(model: type[models.Model]) -> bool:
    """Whether rows of ``model`` can go by one ``DELETE`` once their dependants are released.

    False for ``pre_delete``/``post_delete`` receivers, a generic relation,
    or a foreign key to the model whose ``on_delete`` SQL cannot apply
    (``PROTECT``, ``RESTRICT``, ``SET(...)``): Django's deletion is needed.
    """
    if signals.pre_delete.has_listeners(model) or signals.post_delete.has_listeners(model):
        return False
    if any(hasattr(field, "bulk_related_objects") for field in model._meta.private_fields):
        return False
    # A foreign key to another column than the primary key (to_field) cannot
    # be found by the key range once its row is gone: Django's deletion then.
    return all(
        relation.on_delete in _IN_SQL and relation.field.target_field.primary_key
        for relation in _relations(model)
    )


def _cascades_in_sql(model: type[models.Model], path: frozenset[Any] = frozenset()) -> bool:
    """:func:`deletes_in_sql` for ``model`` and every model its cascades reach (no cycle)."""
    if model in path or not deletes_in_sql(model):
        return False
    return all(
        _cascades_in_sql(relation.related_model, path | {model})
        for relation in _relations(model)
        if relation.on_delete is models.CASCADE
    )


def release_orphans(model: type[models.Model], *, keys: tuple[Any, Any], using: str) -> None:
    """Apply each foreign key's ``on_delete`` to rows pointing at deleted rows of ``model``.

    ``keys`` (first, last) is the range of primary keys whose rows the
    current transaction has just deleted (``model`` is one
    :func:`deletes_in_sql` accepts): a row pointing at a key in that range
    whose row no longer exists is handled. Each statement takes a fresh
    look (PostgreSQL's READ COMMITTED), so an event that a webhook committed
    for a row while the ``DELETE`` waited for it is found too.
    """
    for relation in _relations(model):
        if relation.on_delete in SKIP_COLLECTION:
            continue
        field = relation.field
        gone = ~Exists(model._base_manager.using(using).filter(pk=OuterRef(field.attname)))
        pointing = relation.related_model._base_manager.using(using).filter(
            gone, **{f"{field.name}__gte": keys[0], f"{field.name}__lte": keys[1]}
        )
        _apply(relation, pointing, using=using)


def release_dependants(rows: QuerySet[Any], *, using: str) -> None:
    """Apply each foreign key's ``on_delete`` to the rows pointing at ``rows`` (not deleted here).

    ``rows`` (of a model :func:`deletes_in_sql` accepts) are named by the
    same subquery in every statement, and deleted by the caller after.
    """
    for relation in _relations(rows.model):
        field = relation.field
        if relation.on_delete in SKIP_COLLECTION:
            continue
        pointing = relation.related_model._base_manager.using(using).filter(
            **{f"{field.name}__in": rows.values(field.target_field.attname)}
        )
        _apply(relation, pointing, using=using)


def _apply(relation: Any, pointing: QuerySet[Any], *, using: str) -> None:
    """What ``relation``'s ``on_delete`` does to ``pointing``, its rows that lose their target."""
    field = relation.field
    if relation.on_delete is models.SET_NULL:
        pointing.update(**{field.name: None})
    elif relation.on_delete is models.SET_DEFAULT:
        pointing.update(**{field.name: field.get_default()})
    elif _cascades_in_sql(relation.related_model):
        release_dependants(pointing, using=using)
        pointing._raw_delete(using)
    else:
        # Django's deletion, with the model's signals and its own dependants.
        pointing.delete()
