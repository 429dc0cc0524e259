"""Fixtures for queued delivery, workers and throttling tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.tasks import task_backends
from django.utils.connection import Local

from tests.smtp_server import LoopbackSMTPServer

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
DUMMY_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def reset_task_backends() -> None:
    """Forget configured task backends: Django does not on a TASKS change in tests."""
    task_backends.__dict__.pop("settings", None)
    task_backends._settings = None
    task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture
def use_tasks(settings: Any) -> Iterator[Callable[[dict[str, Any]], Any]]:
    """``use_tasks(TASKS)`` switches task backends; the originals return at teardown."""

    def switch(tasks: dict[str, Any]) -> Any:
        settings.TASKS = tasks
        reset_task_backends()
        return task_backends["default"]

    yield switch
    reset_task_backends()


@pytest.fixture
def worker_backend(use_tasks: Callable[[dict[str, Any]], Any]) -> Any:
    """A task backend that runs tasks elsewhere (Django's DummyBackend keeps them)."""
    return use_tasks(DUMMY_TASKS)


@pytest.fixture
def plain_smtp(smtp_server_factory: Callable[..., LoopbackSMTPServer]) -> LoopbackSMTPServer:
    """A plain-text SMTP server without AUTH, like a local relay."""
    return smtp_server_factory(tls_mode="none", username=None, password=None, require_auth=False)


def use_server(
    settings: Any,
    server: LoopbackSMTPServer,
    alias: str = "default",
    *,
    backend: str = SMTP_BACKEND,
) -> None:
    """``alias`` sends through ``server``; ``backend``: a send path of tests/backends.py."""
    settings.MAILERS = {
        **settings.MAILERS,
        alias: {"BACKEND": backend, "OPTIONS": server.options()},
    }


def make_users(count: int, *, prefix: str = "user", without_email: int = 0) -> None:
    """``count`` users with addresses plus ``without_email`` without, in one insert."""
    model = get_user_model()
    users = [
        model(username=f"{prefix}{i}", email=f" {prefix}{i}@example.com ") for i in range(count)
    ]
    users += [model(username=f"{prefix}-nomail{i}", email="") for i in range(without_email)]
    model.objects.bulk_create(users, batch_size=1000)
