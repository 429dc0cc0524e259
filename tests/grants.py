"""Giving test users permissions by name, for both test projects."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission


def grant(user: Any, perms: tuple[str, ...]) -> None:
    """Add each ``"app_label.codename"`` permission to ``user``."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
