"""A task backend whose broker is down: every enqueue fails as a dead Redis would.

A real broker cannot be made to fail on demand inside one test run without
stopping the one the other tests use; this stands in for it.
"""

from __future__ import annotations

from typing import Any

from django.tasks.backends.base import BaseTaskBackend

REFUSAL = "Error 111 connecting to 127.0.0.1:6379. Connection refused."


class UnreachableBrokerBackend(BaseTaskBackend):
    supports_defer = True

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        raise ConnectionError(REFUSAL)


TASKS = {"default": {"BACKEND": "tests.unreachable_broker.UnreachableBrokerBackend"}}
