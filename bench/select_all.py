"""How long "select all users, send a test mail" takes to answer, and in how many queries.

Usage (from the repository root; give an empty scratch database, the run
creates its tables and users there)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_select_all \\
        .venv/bin/python bench/select_all.py              # 100,000 users
    .venv/bin/python bench/select_all.py --users 20000    # SQLite in a temp dir

With a queue task backend configured (Django's ``DummyBackend`` here, as a
stand-in for django-tasks-db or Celery), the admin action calls
``send_test_mail_to_users(queryset, ...)``. Above ``WRITE_IN_REQUEST_LIMIT``
(5,000) addressed users it records their ids and hands the batch to the
worker, which writes the log rows before delivering them. The run times
that request path; then, so that no cost is hidden, the worker's writing of
the same 100,000 rows (``write_pending_rows``); and in the same run a
baseline: the per-object path every caller used before, streaming the users
into Python and bulk-inserting ``MailLog`` objects in chunks
(``send_test_mail(from_users(queryset), queue=True)``). The log table is
emptied before each run so the runs compare like with like.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_dir: str) -> str:
    import dj_database_url
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", f"sqlite:///{db_dir}/select_all.sqlite3")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "mailops"],
        DATABASES={"default": dj_database_url.parse(url)},
        USE_TZ=True,
        # Never contacted: the rows are only queued.
        MAILERS={
            "sink": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": 2525},
            }
        },
        DEFAULT_FROM_EMAIL="bench@example.com",
        MAILOPS={"DEFAULT_MAILER": "sink", "ASYNC_THRESHOLD": 50},
        # A backend that runs tasks elsewhere: the request only queues.
        TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}},
        LOGGING={"version": 1, "loggers": {"mailops": {"level": "ERROR"}}},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url.split("@")[-1] if "DATABASE_URL" in os.environ else "SQLite (temp file)"


def make_users(count: int) -> None:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    if model.objects.count() == count:
        return
    model.objects.all().delete()
    model.objects.bulk_create(
        (model(username=f"bench{i}", email=f"bench{i}@example.com") for i in range(count)),
        batch_size=5000,
    )


def empty_log() -> None:
    from django.db import connection

    from mailops.models import MailLog, PendingBatch

    PendingBatch.objects.all().delete()
    table = connection.ops.quote_name(MailLog._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {table} CASCADE")
        else:
            cursor.execute(f"DELETE FROM {table}")


def request_path() -> Any:
    """What the admin's "send test mail" action runs for a whole user selection."""
    from django.contrib.auth import get_user_model

    from mailops.models import MailTrigger
    from mailops.services import send_test_mail_to_users

    users = get_user_model().objects.all()
    return send_test_mail_to_users(users, trigger=MailTrigger.ADMIN_ACTION)


def per_object_path() -> Any:
    """The baseline: users streamed into Python, rows bulk-inserted in chunks."""
    from django.contrib.auth import get_user_model

    from mailops.models import MailTrigger
    from mailops.recipients import from_users
    from mailops.services import send_test_mail

    users = get_user_model().objects.all()
    return send_test_mail(from_users(users), trigger=MailTrigger.ADMIN_ACTION, queue=True)


def worker_writes(users: int) -> float:
    """Seconds the worker takes to write the rows the request path left to it."""
    from mailops.models import MailLog
    from mailops.sending.pending import write_pending_rows

    summary = request_path()
    start = time.perf_counter()
    written = write_pending_rows(summary.batch_id)
    elapsed = time.perf_counter() - start
    if written != users or MailLog.objects.queued().count() != users:
        raise RuntimeError(f"the worker wrote {written} of {users} rows")
    return elapsed


def measure(path: Callable[[], Any], users: int, runs: int) -> tuple[list[float], int]:
    """Seconds per run and the queries of the last run."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times = []
    queries = 0
    for _ in range(runs):
        empty_log()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            summary = path()
            times.append(time.perf_counter() - start)
        queries = len(captured)
        if not summary.handed_to_worker or summary.queued != users:
            raise RuntimeError(f"expected {users} queued rows, got {summary.counts}")
    return times, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users selected")
    parser.add_argument("--runs", type=int, default=5, help="request-path runs (median reported)")
    parser.add_argument(
        "--baseline-runs", type=int, default=1, help="per-object baseline runs (slow)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as db_dir:
        database = setup_django(db_dir)
        make_users(args.users)
        print(f"Select all: {args.users:,} users, database: {database}")
        results = {
            "request path (send_test_mail_to_users)": measure(request_path, args.users, args.runs),
            "baseline: per-object (from_users + write_rows)": measure(
                per_object_path, args.users, args.baseline_runs
            ),
        }
        base = statistics.median(results["baseline: per-object (from_users + write_rows)"][0])
        for name, (times, queries) in results.items():
            median = statistics.median(times)
            spread = ", ".join(f"{t:.2f}" for t in times)
            print(
                f"  {name:<50} median {median:6.3f} s  {queries:>5} queries  "
                f"{base / median:5.2f}x faster than baseline  (runs: {spread})"
            )
        empty_log()
        writing = worker_writes(args.users)
        print(
            f"  then the worker writes the {args.users:,} queued rows in {writing:.3f} s "
            f"(before it starts sending; not part of the answer)"
        )
        median = statistics.median(results["request path (send_test_mail_to_users)"][0])
        print(f"Target: answer in under 1 s: {'met' if median < 1 else 'NOT met'} ({median:.3f} s)")
        empty_log()


if __name__ == "__main__":
    main()
