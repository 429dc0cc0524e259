"""List filters and the date hierarchy of the mail log admin, cheap at a million rows.

Django's stock versions ask the database for distinct values on every page
load (``AllValuesFieldListFilter``: ``SELECT DISTINCT mailer``; the date
hierarchy: ``DISTINCT`` over truncated dates), which reads the whole table.
These give the same links from index lookups and from the summary query
the page runs anyway.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import ChangeList
from django.db import connections, router
from django.db.models import Model
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from mailops.retention.history import ClosedDays, closed_days

# The most mailer names the filter lists; the log of a real site has a handful.
MAX_MAILERS = 100

# Vendors with WITH RECURSIVE and scalar subqueries using ORDER BY ... LIMIT.
_LOOSE_SCAN_VENDORS = {"postgresql", "sqlite", "mysql"}


def distinct_values(model: type[Model], field_name: str, *, limit: int = MAX_MAILERS) -> list[str]:
    """Distinct non-null values of an indexed column, one index probe per value.

    A "loose index scan" as a recursive CTE: each step asks the index for the
    next value greater than the last, so the cost grows with the number of
    distinct values, not with the number of rows (``SELECT DISTINCT`` reads
    them all). Other databases get the plain ``DISTINCT`` query.
    """
    alias = router.db_for_read(model)
    connection = connections[alias]
    if connection.vendor not in _LOOSE_SCAN_VENDORS:
        values = (
            model._default_manager.using(alias)
            .order_by(field_name)
            .values_list(field_name, flat=True)
            .distinct()[:limit]
        )
        return [v for v in values if v is not None]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    field: Any = model._meta.get_field(field_name)
    column = quote(field.column)
    # Identifiers come from model metadata, never from the request.
    sql = (
        f"WITH RECURSIVE walk(v) AS ("  # noqa: S608
        f" SELECT (SELECT {column} FROM {table} WHERE {column} IS NOT NULL"
        f" ORDER BY {column} LIMIT 1)"
        f" UNION ALL"
        f" SELECT (SELECT {column} FROM {table} WHERE {column} > walk.v"
        f" ORDER BY {column} LIMIT 1) FROM walk WHERE walk.v IS NOT NULL"
        f") SELECT v FROM walk WHERE v IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


class MailerListFilter(admin.SimpleListFilter):
    """The mailer aliases found in the log, from the (mailer, created_at) index."""

    title = _("mailer")
    parameter_name = "mailer"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = distinct_values(model_admin.model, "mailer")
        selected = self.value()
        if selected and selected not in names:
            # A link to an alias that has no rows (any more) still shows what is applied.
            names.append(selected)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(mailer=value) if value else queryset


class InDoubtListFilter(admin.BooleanFieldListFilter):
    """``in_doubt``, titled as the docs name it ("By in doubt", not the field's long label)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = _("in doubt")


class BatchListFilter(admin.SimpleListFilter):
    """``?batch_id=<uuid>``: the rows of one send, as linked from the send messages.

    Shown in the sidebar only while applied, so the operator sees it and can
    clear it; a malformed id sends the admin's "invalid filter" redirect,
    not an error page.
    """

    title = _("batch")
    parameter_name = "batch_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if not value:
            return queryset
        try:
            batch_id = uuid.UUID(value)
        except ValueError:
            raise IncorrectLookupParameters(
                _("%(value)r is not a batch id") % {"value": value}
            ) from None
        return queryset.filter(batch_id=batch_id)


def date_hierarchy(cl: ChangeList, first: datetime | None, last: datetime | None) -> dict[str, Any]:
    """The context of ``admin/date_hierarchy.html``, without a DISTINCT query.

    Django lists only the years/months/days that have rows, found with a
    ``DISTINCT`` over the truncated dates of every filtered row (seconds at a
    million rows). Here the choices are every period between the first and
    the last row of the filtered list (``first``/``last``, from the summary
    query); a period in between may hold no rows and shows an empty list.
    """
    field_name = cl.date_hierarchy
    field = get_fields_from_path(cl.model, field_name)[-1]
    year_field, month_field, day_field = (f"{field_name}__{p}" for p in ("year", "month", "day"))
    params = cl.params

    def link(filters: dict[str, Any]) -> str:
        return str(cl.get_query_string(filters, [f"{field_name}__"]))

    def lookup(name: str) -> int | None:
        value = params.get(name)
        if isinstance(value, list):
            value = value[-1] if value else None
        return int(value) if value else None

    year, month, day = lookup(year_field), lookup(month_field), lookup(day_field)
    if first and last:
        first, last = timezone.localtime(first), timezone.localtime(last)
    context: dict[str, Any] = {"show": True, "field_name": field.verbose_name}

    if not (year or month or day) and first and last and first.year == last.year:
        # Like Django: start at the year (and month) when everything is in one.
        year = first.year
        if first.month == last.month:
            month = first.month

    if year and month and day:
        when = date(year, month, day)
        context["back"] = {
            "link": link({year_field: year, month_field: month}),
            "title": capfirst(formats.date_format(when, "YEAR_MONTH_FORMAT")),
        }
        context["choices"] = [{"title": capfirst(formats.date_format(when, "MONTH_DAY_FORMAT"))}]
    elif year and month:
        context["back"] = {"link": link({year_field: year}), "title": str(year)}
        days = range(first.day, last.day + 1) if first and last else range(0)
        context["choices"] = [
            {
                "link": link({year_field: year, month_field: month, day_field: d}),
                "title": capfirst(formats.date_format(date(year, month, d), "MONTH_DAY_FORMAT")),
            }
            for d in days
        ]
    elif year:
        context["back"] = {"link": link({}), "title": _("All dates")}
        months = range(first.month, last.month + 1) if first and last else range(0)
        context["choices"] = [
            {
                "link": link({year_field: year, month_field: m}),
                "title": capfirst(formats.date_format(date(year, m, 1), "YEAR_MONTH_FORMAT")),
            }
            for m in months
        ]
    else:
        context["back"] = None
        years = range(first.year, last.year + 1) if first and last else range(0)
        context["choices"] = [{"link": link({year_field: str(y)}), "title": str(y)} for y in years]
    return context


# Changelist parameters the daily roll-up can answer, and its field for each.
_HISTORY_FIELDS = {"status__exact": "status", "trigger__exact": "trigger", "mailer": "mailer"}
_DATE_PARTS = ("created_at__year", "created_at__month", "created_at__day")


def history_for(cl: ChangeList) -> ClosedDays | None:
    """The daily roll-up narrowed like the list; None if no day is closed or the
    list's filters cannot be said there.

    Status, mailer, trigger and the date hierarchy have a counterpart in
    ``MailDailyCount``; a search, a batch or any other filter does not (the
    chart and summary then count the rows still kept).
    """
    if cl.query:
        return None
    filters: dict[str, Any] = {}
    parts: dict[str, int] = {}
    for name, values in cl.filter_params.items():
        value = values[-1] if isinstance(values, list) else values
        if name in _HISTORY_FIELDS:
            filters[_HISTORY_FIELDS[name]] = value
        elif name in _DATE_PARTS:
            try:
                parts[name.rsplit("__", 1)[1]] = int(value)
            except ValueError:
                return None
        else:
            return None
    if parts:
        try:
            first, after = _date_range(parts)
        except (KeyError, ValueError, OverflowError):
            return None
        filters.update(day__gte=first, day__lt=after)
    return closed_days(using=cl.queryset.db, filters=filters)


def _date_range(parts: dict[str, int]) -> tuple[date, date]:
    year = parts["year"]
    if "month" not in parts:
        return date(year, 1, 1), date(year + 1, 1, 1)
    month = parts["month"]
    if "day" not in parts:
        first = date(year, month, 1)
        return first, (first + timedelta(days=32)).replace(day=1)
    first = date(year, month, parts["day"])
    return first, first + timedelta(days=1)
