"""Fixtures shared by the whole suite. Area-specific ones live beside their tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from tests.grants import grant

# Fixture modules, registered once here: test modules use their fixtures by name
# without importing them.
pytest_plugins = [
    "tests.smtp_server",
    "tests.scale_fixtures",
    "tests.maillog_fixtures",
    "tests.provider_api",
    "tests.browser_fixtures",
    "tests.dns_server",
    "tests.imap_server",
    "tests.hostile_imap",
    "tests.worker_processes",
    "tests.backends",
    "tests.faulty_smtp",
    "tests.postfix_server",
]

User = get_user_model()

# tests/host/ is a second project (its own settings, user model and admin site):
# its tests run only under ``--ds=tests.host.settings``, the others only without it.
# tests/host/classic/ is the same project on Django's classic EMAIL_* settings (no
# MAILERS): its tests run only under ``--ds=tests.host.settings_classic``.
HOST_TESTS = Path(__file__).resolve().parent / "host"
HOST_SETTINGS = "tests.host.settings"
CLASSIC_TESTS = HOST_TESTS / "classic"
CLASSIC_SETTINGS = "tests.host.settings_classic"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    from django.conf import settings

    def within(folder: Path) -> bool:
        return collection_path == folder or folder in collection_path.parents

    own = {HOST_SETTINGS: HOST_TESTS, CLASSIC_SETTINGS: CLASSIC_TESTS}.get(settings.SETTINGS_MODULE)
    if own is None:
        return True if within(HOST_TESTS) else None
    if own == HOST_TESTS and within(CLASSIC_TESTS):
        return True
    if not within(own) and collection_path.name.startswith("test_"):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave PostgreSQL-only tests out of a SQLite run, and say so in the summary."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    postgres_only = [item for item in items if item.get_closest_marker("postgres")]
    if postgres_only:
        config.hook.pytest_deselected(items=postgres_only)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


def pytest_report_header(config: pytest.Config) -> str:
    from django.db import connection

    return f"mailops test database: {connection.vendor}"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Django's cache outlives each test's database: start every test without
    the previous one's entries (the mail log chart, DNS findings)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """Create a user; ``perms`` are ``"app_label.codename"`` strings."""

    def make(username: str, email: str = "", *, perms: tuple[str, ...] = (), **fields: Any) -> Any:
        user = User.objects.create_user(
            username=username, email=email, password="pw-" + username, **fields
        )
        grant(user, perms)
        return user

    return make


@pytest.fixture
def superuser(db: Any) -> Any:
    return User.objects.create_superuser("root", "root@example.com", "pw-root")


@pytest.fixture
def recipients_users(make_user: Callable[..., Any]) -> list[Any]:
    """Three users with addresses and one without."""
    return [
        make_user("alice", "alice@example.com"),
        make_user("bob", "bob@example.com"),
        make_user("carol", "carol@example.com"),
        make_user("nomail", ""),
    ]
