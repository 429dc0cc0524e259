"""How fast the mail log admin answers at a million rows, against Django's defaults.

Usage (from the repository root)::

    .venv/bin/python bench/audit_page.py          # SQLite, temp file, 1,000,000 rows
    .venv/bin/python bench/audit_page.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/audit_page.py --rows 100000 --runs 5 --baseline-runs 1

It never touches development data: on PostgreSQL it creates (and at the end
drops) its own database, ``mailops_audit_bench`` by default, on the server
named by ``--database-url``; on SQLite it uses a file in a temporary
directory. ``--keep`` leaves the database in place and ``--reuse`` times a
kept one again without filling it (after applying any new migration).

The table is filled in one ``INSERT ... SELECT`` (``generate_series`` on
PostgreSQL, a recursive CTE on SQLite): rows spread evenly over ``--days``
(default 365) up to now, in batches of 100, four mailers, four triggers,
50,000 distinct recipients, mostly sent with some failed, rejected,
delivered, bounced. Then ``VACUUM ANALYZE`` / ``ANALYZE``, as autovacuum
would have done.

Each page is fetched through Django's test client as a superuser: twice to
warm up (the second also lists the queries and checks the answer is a 200),
then ``--runs`` times; the median is printed next to the same page served
by a plain ``ModelAdmin`` on a second ``AdminSite`` (``/baseline/``) with
the same ``list_display``, ``list_filter``, ``date_hierarchy``,
``search_fields`` and ``list_per_page`` and Django's defaults for the rest
(full result counts, ``AllValuesFieldListFilter`` for the mailer, the stock
date hierarchy, ``icontains`` search, no ``list_select_related``).
"ratio" is default-admin time / mailops time; "same" says whether both
listed the same entries (a search differs where ``icontains`` finds more).
Target: every mailops page under 250 ms median at 1,000,000 rows on
PostgreSQL; the script exits 1 there if one is not.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 250.0
USERS = 1000
RECIPIENTS = 50_000
BATCH_SIZE = 100
MAILERS = ("default", "gmail", "ses", "backup")


# --- database -------------------------------------------------------------------


def postgres_bench_url(server_url: str, name: str) -> str:
    """``server_url`` with its database name replaced by ``name``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_postgres_database(server_url: str, name: str, *, drop_only: bool = False) -> None:
    import psycopg
    from psycopg import sql

    maintenance = postgres_bench_url(server_url, "postgres")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        if not drop_only:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(database_url: str) -> None:
    import dj_database_url
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "import_export",
            "anymail",
            "mailops",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF="bench_audit_urls",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        # Persistent connections: time the page, not the connection setup.
        DATABASES={"default": dj_database_url.parse(database_url, conn_max_age=600)},
        USE_TZ=True,
        TIME_ZONE="UTC",
        STATIC_URL="static/",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        MAILERS={m: {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"} for m in MAILERS},
        DEFAULT_FROM_EMAIL="bench@example.com",
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}},
        LOGGING={"version": 1, "loggers": {"mailops": {"level": "ERROR"}}},
    )
    django.setup()
    install_urls()


def install_urls() -> None:
    """``/admin/`` is mailops' admin, ``/baseline/`` a plain ModelAdmin on a second site."""
    from django.contrib import admin
    from django.urls import path

    from mailops.admin import MailLogAdmin
    from mailops.models import MailLog

    class BaselineMailLogAdmin(admin.ModelAdmin):
        # Django's defaults, listing and filtering the same things.
        list_display = (
            "created_at",
            "recipient",
            "user",
            "status",
            "mailer",
            "trigger",
            "triggered_by",
            "subject",
            "error",
        )
        list_filter = ("status", "mailer", "trigger", "created_at")
        date_hierarchy = "created_at"
        search_fields = ("recipient", "subject", "message_id", "esp_message_id")
        # Pages as long as mailops' (Django's default is 100), so both list the same rows.
        list_per_page = MailLogAdmin.list_per_page

    baseline = admin.AdminSite(name="baseline")
    baseline.register(MailLog, BaselineMailLogAdmin)
    module = types.ModuleType("bench_audit_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("admin/", admin.site.urls),
        path("baseline/", baseline.urls),
    ]
    sys.modules["bench_audit_urls"] = module


# --- data ------------------------------------------------------------------------


COLUMNS = (
    "created_at, updated_at, status, recipient, user_id, mailer, backend, from_email, subject, "
    "body, message_id, esp_message_id, error, smtp_code, trigger, triggered_by_id, batch_id, "
    "attempts, sent_at, claimed_by, next_attempt_at, arrival, verified_at, arrived_at, "
    "arrival_folder, authentication_results, arrival_error, triggered_by_name, in_doubt, "
    "dsn_status, remote_mta, bounced_at, bounce_match"
)


def fill_sql(
    vendor: str, rows: int, start: str, step: float, first_user: int, operator: int
) -> str:
    """One INSERT ... SELECT producing ``rows`` log rows, oldest first.

    No query parameters: every value is generated here, and without
    parameters the ``%`` below are SQL's modulo, not placeholders.
    """
    if vendor == "postgresql":
        prefix = ""
        source = f"generate_series(0, {rows - 1}) AS i"
        ts = f"('{start}'::timestamptz + (i * {step}) * interval '1 second')"
        ts_sent = f"('{start}'::timestamptz + (i * {step} + 1) * interval '1 second')"
        ts_arrived = f"('{start}'::timestamptz + (i * {step} + 6) * interval '1 second')"
        ts_verified = f"('{start}'::timestamptz + (i * {step} + 9) * interval '1 second')"
        batch = "md5('batch' || (i / 100))::uuid"
    else:
        prefix = (
            "WITH RECURSIVE seq(i) AS "
            f"(SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {rows - 1}) "
        )
        source = "seq"
        ts = f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || (i * {step}) || ' seconds')"
        ts_sent = f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || (i * {step} + 1) || ' seconds')"
        ts_arrived = (
            f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || (i * {step} + 6) || ' seconds')"
        )
        ts_verified = (
            f"strftime('%Y-%m-%d %H:%M:%f', '{start}', '+' || (i * {step} + 9) || ' seconds')"
        )
        batch = "printf('%08x%08x%016x', 3735928559, 305419896, i / 100)"
    status = (
        "CASE WHEN h < 850 THEN 'sent' WHEN h < 930 THEN 'failed' WHEN h < 960 THEN 'rejected' "
        "WHEN h < 985 THEN 'delivered' WHEN h < 992 THEN 'bounced' WHEN h < 996 THEN 'deferred' "
        "ELSE 'queued' END"
    )
    mailer = (
        "CASE WHEN m < 70 THEN 'default' WHEN m < 90 THEN 'gmail' WHEN m < 99 THEN 'ses' "
        "ELSE 'backup' END"
    )
    # About one sent row an hour is a canary (sendtestmail --verify) read back from its
    # mailbox: in the inbox, one in ten in junk.
    canary = "CASE WHEN i % 120 = 0 AND h < 850"
    inner = f"SELECT i, (i * 2654435761) % 1000 AS h, (i / {BATCH_SIZE}) % 100 AS m FROM {source}"
    select = f"""
        SELECT
          {ts}, {ts},
          {status},
          CASE WHEN h >= 930 AND h < 960 THEN ''
               ELSE 'user' || (i % {RECIPIENTS}) || '@example.com' END,
          CASE WHEN i % 10 < 7 THEN {first_user} + (i % {USERS}) ELSE NULL END,
          {mailer},
          'django.core.mail.backends.smtp.EmailBackend',
          'mailops@example.com',
          CASE WHEN (i / {BATCH_SIZE}) % 10 = 0 THEN 'Quarterly relay check ' || (i / {BATCH_SIZE})
               ELSE 'Test mail from bench.example.com' END,
          'This is a test mail sent by mailops to prove that bench.example.com can send mail.',
          CASE WHEN h >= 930 AND h < 960 THEN '' ELSE '<' || i || '.mailops@example.com>' END,
          CASE WHEN m >= 90 AND m < 99 THEN 'ses-' || i ELSE '' END,
          CASE WHEN h >= 850 AND h < 930
                 THEN '550 5.1.1 <user' || (i % {RECIPIENTS})
                      || '@example.com>: Recipient address rejected'
               WHEN h >= 930 AND h < 960 THEN 'empty address' ELSE '' END,
          CASE WHEN h >= 850 AND h < 930 THEN 550 ELSE NULL END,
          CASE WHEN m < 60 THEN 'admin_action' WHEN m < 85 THEN 'command'
               WHEN m < 95 THEN 'self_service' ELSE 'resend' END,
          CASE WHEN m < 60 THEN {operator} ELSE NULL END,
          {batch},
          CASE WHEN h >= 930 AND h < 960 THEN 0 ELSE 1 END,
          CASE WHEN h < 850 OR h >= 960 AND h < 996 THEN {ts_sent} ELSE NULL END,
          '',
          NULL,
          {canary} THEN CASE WHEN i % 1200 = 0 THEN 'junk' ELSE 'inbox' END ELSE '' END,
          {canary} THEN {ts_verified} ELSE NULL END,
          {canary} THEN {ts_arrived} ELSE NULL END,
          {canary} THEN CASE WHEN i % 1200 = 0 THEN 'Junk' ELSE 'INBOX' END ELSE '' END,
          {canary} THEN 'spf=pass dkim=pass dmarc=pass' ELSE '' END,
          '',
          '',
          false,
          CASE WHEN h >= 985 AND h < 992 THEN '5.1.1' ELSE '' END,
          CASE WHEN h >= 985 AND h < 992 THEN 'mx.example.com' ELSE '' END,
          CASE WHEN h >= 985 AND h < 992 THEN {ts_arrived} ELSE NULL END,
          CASE WHEN h >= 985 AND h < 992 THEN 'message_id' ELSE '' END
        FROM ({inner}) AS s
    """
    return f"{prefix}INSERT INTO mailops_maillog ({COLUMNS}) {select}"


def fill(rows: int, days: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from mailops.models import MailLog

    expected = {f.column for f in MailLog._meta.concrete_fields} - {"id"}
    listed = {c.strip() for c in COLUMNS.split(",")}
    if expected != listed:
        raise SystemExit(
            f"MailLog columns changed; update bench COLUMNS: missing {sorted(expected - listed)}, "
            f"unknown {sorted(listed - expected)}"
        )
    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"user{i}", email=f"user{i}@example.com") for i in range(USERS)],
        batch_size=1000,
    )
    first_user = user_model.objects.order_by("pk").values_list("pk", flat=True).first()
    operator = user_model.objects.create_superuser("bench", "bench@example.com", "bench")
    start = timezone.now() - timedelta(days=days)
    # SQLite keeps datetimes as naive UTC text; PostgreSQL reads the offset.
    start_text = start.strftime(
        "%Y-%m-%d %H:%M:%S" + ("" if connection.vendor == "sqlite" else "+00")
    )
    sql = fill_sql(
        connection.vendor, rows, start_text, days * 86400 / rows, first_user, operator.pk
    )
    begun = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE mailops_maillog")
        else:
            cursor.execute("ANALYZE")
    print(f"filled {rows:,} rows in {time.perf_counter() - begun:.1f} s", flush=True)


# --- timing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    # Path under the admin site, e.g. "mailops/maillog/" or ".../12/change/".
    path: str
    params: dict[str, str] = field(default_factory=dict)
    # False for an entry's page: no list of rows to compare.
    is_list: bool = True

    def url(self, site: str) -> str:
        query = "?" + urlencode(self.params) if self.params else ""
        return f"/{site}/{self.path}{query}"


@dataclass(frozen=True)
class Timing:
    median_ms: float
    queries: int
    rows: int
    # Primary keys of the listed entries (empty for an entry's page).
    pks: tuple[int, ...]


def pages() -> list[Page]:
    """The pages to time, with values picked from the data."""
    from django.utils import timezone

    from mailops.models import MailLog

    changelist = "mailops/maillog/"
    top = MailLog.objects.order_by("-pk").values_list("pk", flat=True).first() or 1
    sample = MailLog.objects.filter(pk__lte=top // 2).exclude(recipient="").order_by("-pk").first()
    assert sample is not None, "no rows"
    today = timezone.localdate()
    # As Django's DateFieldListFilter links "Past 7 days" (local midnights).
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    week = {
        "created_at__gte": str(midnight - timedelta(days=7)),
        "created_at__lt": str(midnight + timedelta(days=1)),
    }
    # The date hierarchy drilled to last month, and to its 15th.
    last_month = today.replace(day=1) - timedelta(days=1)
    month = {"created_at__year": str(last_month.year), "created_at__month": str(last_month.month)}
    return [
        Page("list", changelist),
        Page("status = failed", changelist, {"status__exact": "failed"}),
        Page("mailer = ses", changelist, {"mailer": "ses"}),
        Page("trigger = command", changelist, {"trigger__exact": "command"}),
        Page("trigger = self-service", changelist, {"trigger__exact": "self_service"}),
        Page("date: past 7 days", changelist, week),
        Page(f"hierarchy: {today.year}", changelist, {"created_at__year": str(today.year)}),
        Page(f"hierarchy: {last_month:%Y-%m}", changelist, month),
        Page(f"hierarchy: {last_month:%Y-%m}-15", changelist, {**month, "created_at__day": "15"}),
        Page("search: address", changelist, {"q": sample.recipient}),
        Page("search: Message-ID", changelist, {"q": sample.message_id}),
        Page("search: subject", changelist, {"q": "Quarterly relay check 40"}),
        Page("batch", changelist, {"batch_id": str(sample.batch_id)}),
        Page(
            "failed + ses + 7 days",
            changelist,
            {"status__exact": "failed", "mailer": "ses", **week},
        ),
        Page("page 2", changelist, {"p": "2"}),
        Page("page 100", changelist, {"p": "100"}),
        Page("entry", f"{changelist}{sample.pk}/change/", is_list=False),
    ]


ROW_PK = re.compile(rb'name="_selected_action" value="(\d+)"')


def measure(client: Any, url: str, runs: int, *, show_queries: bool = False) -> Timing:
    """Median milliseconds over ``runs`` GETs, the queries of one request, the rows listed."""
    from django.db import connection

    queries: list[tuple[float, str]] = []

    def timed(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        begun = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.append(((time.perf_counter() - begun) * 1000, sql))

    client.get(url)  # warm caches before the query listing
    with connection.execute_wrapper(timed):
        response = client.get(url)
    if show_queries:
        # On SQLite rows are read after execute() returns: these times are partial.
        print(f"  {url}")
        for ms, sql in queries:
            print(f"    {ms:8.1f} ms  {' '.join(sql.split())[:160]}")
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.get('Location', '')}")
    # One row checkbox per listed entry (both admins offer actions to a superuser).
    pks = tuple(int(pk) for pk in ROW_PK.findall(response.content))
    times = []
    for _ in range(runs):
        begun = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - begun) * 1000)
    return Timing(statistics.median(times), len(queries), len(pks), pks)


def run(
    runs: int,
    baseline_runs: int,
    report: Callable[[str], None],
    *,
    verdict: bool,
    show_queries: bool = False,
) -> bool:
    """Time every page on both admins and report a table; True if all are under target."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    header = (
        f"{'page':<24} {'mailops ms':>10} {'queries':>7} {'default ms':>10} {'queries':>7}"
        f" {'ratio':>6} {'rows':>4} {'same':>4}  {'<' + str(int(TARGET_MS)) + ' ms':>8}"
    )
    report(header)
    report("-" * len(header))
    ok = True
    for page in pages():
        ours = measure(client, page.url("admin"), runs, show_queries=show_queries)
        theirs = measure(client, page.url("baseline"), baseline_runs)
        passed = ours.median_ms < TARGET_MS
        ok &= passed
        # Both list the same entries (the same search matches, filters, order)?
        same = ("yes" if ours.pks == theirs.pks else "no") if page.is_list else "-"
        report(
            f"{page.name:<24} {ours.median_ms:>10.1f} {ours.queries:>7} {theirs.median_ms:>10.1f}"
            f" {theirs.queries:>7} {theirs.median_ms / ours.median_ms:>5.1f}x"
            f" {ours.rows if page.is_list else '-':>4}"
            f" {same:>4}  {('PASS' if passed else 'FAIL') if verdict else '-':>8}"
        )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="MailLog rows to create")
    parser.add_argument("--days", type=int, default=365, help="days the rows are spread over")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server URL (its database name is replaced by --bench-db); "
        "empty: SQLite in a temporary directory",
    )
    parser.add_argument(
        "--bench-db", default="mailops_audit_bench", help="PostgreSQL database to create and drop"
    )
    parser.add_argument("--sqlite-path", default="", help="SQLite file (default: a temp file)")
    parser.add_argument("--runs", type=int, default=7, help="timed requests per mailops page")
    parser.add_argument(
        "--baseline-runs", type=int, default=3, help="timed requests per default-admin page"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    parser.add_argument(
        "--show-queries", action="store_true", help="print each mailops query and its time"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="time an existing, filled bench database"
    )
    args = parser.parse_args()
    if args.reuse and not (args.database_url or args.sqlite_path):
        parser.error("--reuse needs --database-url or --sqlite-path (a database kept with --keep)")

    tmp: tempfile.TemporaryDirectory[str] | None = None
    postgres = args.database_url.startswith(("postgres://", "postgresql://"))
    if postgres:
        if not args.reuse:
            recreate_postgres_database(args.database_url, args.bench_db)
        url = postgres_bench_url(args.database_url, args.bench_db)
        label = f"PostgreSQL ({args.bench_db})"
    elif args.database_url:
        raise SystemExit("--database-url must be a postgres:// URL (leave it out for SQLite)")
    else:
        if args.sqlite_path:
            path = Path(args.sqlite_path)
            if not args.reuse and path.exists():
                path.unlink()
        else:
            tmp = tempfile.TemporaryDirectory(prefix="mailops-bench-")
            path = Path(tmp.name) / "bench.sqlite3"
        url = f"sqlite:///{path}"
        label = f"SQLite ({path})"

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    setup_django(url)
    from django.core.management import call_command
    from django.db import connections

    from mailops.admin import MailLogAdmin
    from mailops.models import MailLog

    ok = True
    try:
        call_command("migrate", verbosity=0)
        if args.reuse:
            # Statistics for indexes a migration just added (expression indexes).
            with connections["default"].cursor() as cursor:
                cursor.execute("ANALYZE mailops_maillog")
        else:
            fill(args.rows, args.days)
        rows = MailLog.objects.count()
        print(
            f"\n{label}: {rows:,} rows over {args.days} days; median of {args.runs} runs "
            f"(default admin: {args.baseline_runs}); mailops counts up to "
            f"{MailLogAdmin.count_limit:,} rows per page\n",
            flush=True,
        )
        ok = run(
            args.runs,
            args.baseline_runs,
            lambda line: print(line, flush=True),
            verdict=postgres,
            show_queries=args.show_queries,
        )
        print(
            "\nratio: default-admin time / mailops time; same: both list the same entries;"
            f"\ntarget (PostgreSQL): every mailops page under {TARGET_MS:.0f} ms median"
            + (f": {'PASS' if ok else 'FAIL'}" if postgres else " (not judged on SQLite)")
        )
    finally:
        connections.close_all()
        if postgres and not args.keep:
            recreate_postgres_database(args.database_url, args.bench_db, drop_only=True)
        if tmp is not None and not args.keep:
            tmp.cleanup()
        elif args.keep:
            print(f"kept {url}")
    if postgres and not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
