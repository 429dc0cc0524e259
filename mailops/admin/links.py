"""Links between admin pages, reversed on the admin site a page was reached through.

mailops' pages may live on any ``AdminSite`` a project mounts (its own, or
several): every link is reversed in that site's namespace, and a page that
site does not serve yields ``None`` so the caller can leave the link out.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.admin import AdminSite
from django.urls import NoReverseMatch, reverse


def admin_url(admin_site: AdminSite | str, name: str, **kwargs: Any) -> str | None:
    """The URL of ``name`` on ``admin_site`` (a site or its name), or ``None`` if not served."""
    site_name = admin_site if isinstance(admin_site, str) else admin_site.name
    try:
        return reverse(f"{site_name}:{name}", kwargs=kwargs or None, current_app=site_name)
    except NoReverseMatch:
        return None


def with_query(url: str | None, **params: Any) -> str | None:
    """``url`` with ``params`` as its query string (``None`` stays ``None``)."""
    if url is None:
        return None
    return f"{url}?{urlencode({key: str(value) for key, value in params.items()})}"


def changelist_url(admin_site: AdminSite | str, **params: Any) -> str | None:
    """The mail log's list on ``admin_site``, filtered by ``params``."""
    url = admin_url(admin_site, "mailops_maillog_changelist")
    return with_query(url, **params) if params else url


def maillog_entry_url(admin_site: AdminSite | str, pk: Any) -> str | None:
    """One mail log entry's page on ``admin_site``."""
    return admin_url(admin_site, "mailops_maillog_change", object_id=pk)
