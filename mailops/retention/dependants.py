"""What points at rows a purge deletes: each foreign key's ``on_delete``, applied in SQL.

Django's ``QuerySet.delete()`` loads every row it deletes (and every row a
``CASCADE`` reaches) into Python to send signals and to follow further
relations. A purge of a million log rows cannot afford that beside live
sending, so :func:`release_dependants` does the same work in statements
that name the rows by a subquery (``... WHERE log_id IN (SELECT id FROM
... WHERE <the batch>)``), model by model down the relations:

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
from django.db.models import QuerySet, signals
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
    return all(relation.on_delete in _IN_SQL for relation in _relations(model))


def _cascades_in_sql(model: type[models.Model], path: frozenset[Any] = frozenset()) -> bool:
    """:func:`deletes_in_sql` for ``model`` and every model its cascades reach (no cycle)."""
    if model in path or not deletes_in_sql(model):
        return False
    return all(
        _cascades_in_sql(relation.related_model, path | {model})
        for relation in _relations(model)
        if relation.on_delete is models.CASCADE
    )


def release_dependants(
    rows: QuerySet[Any], *, using: str, keys: tuple[Any, Any] | None = None
) -> None:
    """Apply each foreign key's ``on_delete`` to the rows pointing at ``rows`` (not deleted here).

    ``rows`` must be rows of a model :func:`deletes_in_sql` accepts, and
    must not change until they are deleted (the caller locks them): every
    statement names them by the same subquery. ``keys`` (first, last), when
    all their primary keys lie in that range, bounds the foreign keys that
    point at the primary key too: the database then reads the few pointing
    rows from the foreign key's index, instead of joining every row of the
    pointing table with the batch (a hundred times slower with 40,000
    events, and growing with the table).
    """
    for relation in _relations(rows.model):
        field = relation.field
        on_delete = relation.on_delete
        if on_delete in SKIP_COLLECTION:
            continue
        target = field.target_field
        pointing = relation.related_model._base_manager.using(using).filter(
            **{f"{field.name}__in": rows.values(target.attname)}
        )
        if keys is not None and target.primary_key:
            pointing = pointing.filter(
                **{f"{field.name}__gte": keys[0], f"{field.name}__lte": keys[1]}
            )
        if on_delete is models.SET_NULL:
            pointing.update(**{field.name: None})
        elif on_delete is models.SET_DEFAULT:
            pointing.update(**{field.name: field.get_default()})
        elif _cascades_in_sql(relation.related_model):
            release_dependants(pointing, using=using)
            pointing._raw_delete(using)
        else:
            # Django's deletion, with the model's signals and its own dependants.
            pointing.delete()
