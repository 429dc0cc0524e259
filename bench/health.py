"""How much /mail/health/ and /mail/metrics cost at a million log rows.

Usage (from the repository root)::

    .venv/bin/python bench/health.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/health.py                       # SQLite in a temp file
    .venv/bin/python bench/health.py --reuse --database-url ... --bench-db mailops_audit_bench

It fills the table exactly as ``bench/audit_page.py`` does (same generator:
four mailers, about one canary an hour, one in ten of them in junk) in its
own database (``mailops_health_bench``, dropped afterwards unless
``--keep``), then calls both views ``--runs`` times with a valid token and
prints the median, the number of queries, and each query's plan (EXPLAIN
ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite), flagging any
sequential scan of the mail log.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import audit_page  # noqa: E402

TOKEN = "bench-token"  # noqa: S105 - a throwaway benchmark process
MAILBOX = {"host": "127.0.0.1", "username": "ops@example.com", "password": "bench-pw"}


def time_view(view: Any, path: str, runs: int) -> tuple[float, list[str], int]:
    from django.db import connection
    from django.test import RequestFactory

    factory = RequestFactory()
    queries: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        # The statement with its parameters inlined, ready for EXPLAIN.
        queries.append(connection.ops.last_executed_query(context["cursor"], sql, params))
        return result

    request = factory.get(path, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    view(request)  # warm up
    with connection.execute_wrapper(record):
        status = view(request).status_code
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        view(request)
        times.append((time.perf_counter() - begun) * 1000)
    return statistics.median(times), queries, status


def explain(sql: str) -> tuple[str, bool]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        plan = "\n".join(" | ".join(str(c) for c in row) for row in cursor.fetchall())
    seq_scan = (
        "Seq Scan on mailops_maillog" in plan
        if connection.vendor == "postgresql"
        else "SCAN mailops_maillog" in plan and "USING" not in plan
    )
    return plan, seq_scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--bench-db", default="mailops_health_bench")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--plans", action="store_true", help="print each query's whole plan")
    args = parser.parse_args()

    tmp = None
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    if postgres:
        if not args.reuse:
            audit_page.recreate_postgres_database(args.database_url, args.bench_db)
        url = audit_page.postgres_bench_url(args.database_url, args.bench_db)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="mailops-health-bench-")
        url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    audit_page.setup_django(url)
    from django.core.management import call_command
    from django.db import connections
    from django.test import override_settings

    from mailops import health_views
    from mailops.models import MailLog

    try:
        call_command("migrate", verbosity=0)
        if not args.reuse:
            audit_page.fill(args.rows, args.days)
        rows = MailLog.objects.count()
        canaries = MailLog.objects.filter(verified_at__isnull=False).count()
        print(f"\n{connections['default'].vendor}: {rows:,} rows, {canaries:,} canaries\n")
        settings = override_settings(
            MAILOPS={"HEALTH_TOKEN": TOKEN, "MAILBOXES": {"default": MAILBOX, "gmail": MAILBOX}}
        )
        with settings:
            for name, view, path in [
                ("/mail/health/", health_views.health, "/mail/health/"),
                ("/mail/metrics", health_views.metrics, "/mail/metrics"),
            ]:
                median, queries, status = time_view(view, path, args.runs)
                scans = 0
                print(f"{name}: HTTP {status}, median {median:.1f} ms, {len(queries)} queries")
                for sql in queries:
                    plan, seq_scan = explain(sql)
                    scans += seq_scan
                    if args.plans:
                        print(f"\n  {sql}\n    " + plan.replace("\n", "\n    "))
                    else:
                        used = sorted(
                            set(re.findall(r"(?:USING|using) (?:COVERING )?(?:INDEX )?(\w+)", plan))
                        )
                        print(f"  {sql[:90]}...\n      index: {', '.join(used) or '-'}")
                print(f"{name}: sequential scans of the mail log: {scans}\n")
    finally:
        connections.close_all()
        if postgres and not args.keep:
            audit_page.recreate_postgres_database(args.database_url, args.bench_db, drop_only=True)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
