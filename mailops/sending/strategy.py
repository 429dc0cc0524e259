"""How a delivery run uses its database: worked out once per run, used everywhere in it.

The speed-ups that depend on the database sit behind this one object
instead of checks scattered through the send path:

* ``claim_ahead``: a database server of its own (not SQLite, whose one
  writer at a time would make the bookkeeping thread and the progress
  marks wait for each other), and not inside a transaction (another
  thread's connection could not see the rows): claims and outcome writes
  run one chunk ahead in a thread (:mod:`mailops.sending.bookkeeping`);
* ``progress_marks``: not inside a transaction (``ATOMIC_REQUESTS``, a
  test): there the claim is not committed, a killed worker rolls it back
  anyway, and marks would be worthless (:mod:`mailops.sending.wire`);
* ``marks_connection``: PostgreSQL with psycopg 3: marks go over a
  connection of their own, through libpq's asynchronous calls
  (:mod:`mailops.sending.marks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, router

from mailops.models import MailLog


@dataclass(frozen=True)
class Strategy:
    """What the mail log's database allows one delivery run (see the module docstring)."""

    claim_ahead: bool
    progress_marks: bool
    marks_connection: bool

    @classmethod
    def for_run(cls) -> Strategy:
        connection = connections[router.db_for_write(MailLog)]
        outside = not connection.in_atomic_block
        postgresql = connection.vendor == "postgresql"
        return cls(
            claim_ahead=outside and connection.vendor != "sqlite",
            progress_marks=outside,
            marks_connection=postgresql and _has_psycopg3(),
        )


def _has_psycopg3() -> bool:
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)
