"""Fixtures of the host project: its members (custom user model) and console clients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.grants import grant

Member = get_user_model()
CONSOLE = "/console/"


@pytest.fixture
def make_member(db: Any) -> Callable[..., Any]:
    """Create a member; ``perms`` are ``"app_label.codename"`` strings."""

    def make(handle: str, contact_email: str = "", *, perms: tuple[str, ...] = (), **fields: Any):
        member = Member.objects.create_user(handle, contact_email, "pw-" + handle, **fields)
        grant(member, perms)
        return member

    return make


@pytest.fixture
def root(db: Any) -> Any:
    return Member.objects.create_superuser("root", "root@host.example", "pw-root")


@pytest.fixture
def console_client(root: Any) -> Client:
    client = Client()
    client.force_login(root)
    return client
