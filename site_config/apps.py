from __future__ import annotations

from django.apps import AppConfig


class SiteConfigConfig(AppConfig):
    """The reference project as an app, so Django autodiscovers its ``admin.py``."""

    name = "site_config"
    verbose_name = "mailops reference site"
