"""``{% cached_dns_report alias as dns %}``: a mailer's cached DNS findings (Mailers page)."""

from __future__ import annotations

from django import template

from mailops.deliverability.report_cache import CachedReport, cached_report

register = template.Library()


@register.simple_tag
def cached_dns_report(alias: str) -> CachedReport | None:
    """Reads Django's cache only: never a DNS query."""
    return cached_report(alias)
