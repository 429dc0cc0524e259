"""The mail log over years on PostgreSQL: pages, export, purge and history, side by side.

Usage (from the repository root)::

    .venv/bin/python bench/retention.py --database-url postgres://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/retention.py --database-url ... --rows 100000 --export-rows 50000 \\
        --purge-rows 20000 --runs 3

One run, one database (``mailops_retention_bench``, created and dropped):

1. fill ``--rows`` rows over ``--days`` with bench/audit_page.py's single
   ``INSERT ... SELECT generate_series`` (its time is printed);
2. time every audit page (bench/audit_page.py's pages) against Django's
   default admin on the same rows; target: each mailops page < 100 ms median;
3. export the oldest ``--export-rows`` rows as CSV twice: through
   ``COPY ... TO STDOUT`` and through the streamed export (the baseline),
   comparing SHA-256 of the bytes and the growth of peak memory (VmHWM);
   target: COPY < 30 s, byte-identical, flat memory;
4. ``send_test_mail`` throughput (messages/s, locmem mailer) for
   ``--send-seconds`` alone, then while ``purgemaillog``'s service deletes
   the oldest ``--purge-rows`` rows (whole days, so about that many), then
   alone again; targets: the purge < 60 s, throughput during it >= 0.8x of
   the mean alone (before and after: the machine's other load drifts);
5. the numbers: counts per status of the whole log and sent/failed per day
   over ``--days``, before the purge from the rows, after it from the daily
   roll-up plus the rows; target: identical.

Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import audit_page

PAGE_TARGET_MS = 100.0
PURGE_TARGET_S = 60.0
EXPORT_TARGET_S = 30.0
THROUGHPUT_TARGET = 0.8
# Recipients per send_test_mail call while measuring throughput.
SEND_BATCH = 20


def rss_peak_mb() -> float:
    """The process's peak resident memory (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def digest(chunks: Iterable[bytes]) -> tuple[str, int, float, float]:
    """SHA-256, size, seconds and peak memory growth (MB) of an export's bytes.

    The peak is the resident set's high-water mark, reset before (Linux:
    writing 5 to /proc/self/clear_refs), minus the resident set before: a
    flat-memory export adds a few MB whatever the number of rows.
    """
    Path("/proc/self/clear_refs").write_text("5")
    start = rss_peak_mb()
    begun = time.perf_counter()
    sha = hashlib.sha256()
    size = 0
    for chunk in chunks:
        sha.update(chunk)
        size += len(chunk)
    elapsed = time.perf_counter() - begun
    return sha.hexdigest(), size, elapsed, rss_peak_mb() - start


def bench_export(rows: int, report: Callable[[str], None]) -> bool:
    from django.db import connections

    from mailops.exports.copy_csv import copy_supported, iter_copy_csv
    from mailops.exports.resources import iter_csv
    from mailops.models import MailLog

    first = MailLog.objects.order_by("pk").values_list("pk", flat=True).first() or 0
    # As the admin's export reads them: the users joined (list_select_related).
    queryset = MailLog.objects.filter(pk__lt=first + rows).select_related("user", "triggered_by")
    assert copy_supported(queryset)
    copy_sha, copy_size, copy_s, copy_peak = digest(iter_copy_csv(queryset))
    connections.close_all()
    stream_sha, _, stream_s, stream_peak = digest(text.encode() for text in iter_csv(queryset))
    same = copy_sha == stream_sha
    with_error = queryset.exclude(error="").count()
    report(
        f"CSV export of {rows:,} rows ({copy_size / 1e6:.0f} MB): COPY {copy_s:.1f} s "
        f"(+{copy_peak:.1f} MB peak), streamed {stream_s:.1f} s (+{stream_peak:.1f} MB peak), "
        f"ratio {stream_s / copy_s:.1f}x, byte-identical: {'yes' if same else 'NO'}; "
        f"{with_error:,} rows ({with_error * 100 / rows:.0f} %) with an error re-redacted in Python"
    )
    return same and copy_s < EXPORT_TARGET_S


def send_rate(stop: Callable[[], bool], *, minimum_seconds: float) -> tuple[int, float]:
    """Send test mails in batches until ``stop()`` (and at least ``minimum_seconds``)."""
    from django.core import mail

    from mailops.models import MailTrigger
    from mailops.recipients import from_addresses
    from mailops.services import send_test_mail

    sent = 0
    begun = time.perf_counter()
    n = 0
    while True:
        elapsed = time.perf_counter() - begun
        if elapsed >= minimum_seconds and stop():
            return sent, elapsed
        n += 1
        summary = send_test_mail(
            from_addresses([f"rate{n}-{i}@example.com" for i in range(SEND_BATCH)]),
            using="default",
            trigger=MailTrigger.API,
            subject="Throughput",
            body="Throughput body",
        )
        sent += summary.sent
        mail.outbox = []


def numbers(days: int) -> tuple[dict[str, int], list[Any]]:
    """Counts per status of the whole log and sent/failed per day: closed days from the roll-up."""
    from django.db.models import Count

    from mailops import stats
    from mailops.models import MailLog
    from mailops.retention.history import closed_days
    from mailops.retention.policy import local_midnight

    history = closed_days()
    rows = MailLog.objects.order_by()
    counts: Counter[str] = Counter()
    if history is not None:
        counts.update(history.by_status())
        rows = rows.filter(created_at__gte=local_midnight(history.until))
    counts.update({row["status"]: row["n"] for row in rows.values("status").annotate(n=Count("*"))})
    outcomes = stats.daily_outcomes(MailLog.objects.all(), days=days, history=history)
    return dict(counts), outcomes


def _purge_process(
    older_than: int, pace: tuple[float, float], batch_size: int, results: Any
) -> None:
    from django.db import connections

    from mailops.retention.policy import purge_rules
    from mailops.retention.purge import Pace, purge_mail_log

    rests: list[float] = []

    def rest(seconds: float) -> None:
        rests.append(seconds)
        time.sleep(seconds)

    begun = time.perf_counter()
    report = purge_mail_log(
        rules=purge_rules(retention={}, older_than=older_than),
        batch_size=batch_size,
        pace=Pace(pause=pace[0], ratio=pace[1], sleep=rest),
    )
    elapsed = time.perf_counter() - begun
    results.put((report.total, report.days_closed, elapsed, sum(rests), report.batches))
    connections.close_all()


def add_dependants() -> None:
    """What points at old rows on a site with webhooks: events and suppressions.

    One provider event per delivered, bounced or deferred row (about 4 % of
    the rows), and a suppression (``SET_NULL`` link) for one bounced row per
    address: the purge deletes the events with their rows and unlinks the
    suppressions, as it would on a real site.
    """
    from django.db import connection

    begun = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO mailops_mailevent (log_id, event_type, esp, esp_event_id, fingerprint,
                occurred_at, received_at, reject_reason, description, mta_response, click_url,
                dsn_status, remote_mta, matched_by)
            SELECT id, status, 'ses', 'ev-' || id, md5('ev' || id), sent_at, sent_at, '', '',
                CASE WHEN status = 'bounced' THEN '550 5.1.1 unknown user' ELSE '' END, '',
                dsn_status, remote_mta, bounce_match
            FROM mailops_maillog WHERE status IN ('delivered', 'bounced', 'deferred')
            """
        )
        events = cursor.rowcount
        cursor.execute(
            """
            INSERT INTO mailops_suppression (address, reason, detail, source_log_id,
                source_event_id, created_at)
            SELECT DISTINCT ON (l.recipient) l.recipient, 'hard_bounce', '5.1.1', l.id, e.id,
                l.created_at
            FROM mailops_maillog l JOIN mailops_mailevent e ON e.log_id = l.id
            WHERE l.status = 'bounced' AND l.recipient <> ''
            ORDER BY l.recipient, l.id
            """
        )
        suppressions = cursor.rowcount
        cursor.execute("VACUUM ANALYZE mailops_mailevent")
        cursor.execute("VACUUM ANALYZE mailops_suppression")
    print(
        f"added {events:,} events and {suppressions:,} suppressions "
        f"in {time.perf_counter() - begun:.1f} s",
        flush=True,
    )


def wal_position() -> int:
    """Bytes of write-ahead log the server has written so far."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        return int(cursor.fetchone()[0])


def bench_purge(
    rows: int,
    days: int,
    send_seconds: float,
    pace: tuple[float, float],
    batch_size: int,
    report: Callable[[str], None],
) -> tuple[bool, bool]:
    from django.db import connections
    from django.utils import timezone

    from mailops.models import MailLog

    # The oldest `rows` rows end on this day: purge every whole day before it.
    oldest = MailLog.objects.order_by("pk").values_list("created_at", flat=True)
    boundary = oldest[rows - 1 : rows].first() or timezone.now()
    older_than = (timezone.localdate() - timezone.localdate(boundary)).days
    before = numbers(days + 1)
    sent_earlier = MailLog.objects.filter(subject="Throughput").count()

    alone, alone_s = send_rate(lambda: True, minimum_seconds=send_seconds)
    rate_alone = alone / alone_s

    wal_before = wal_position()
    # The purge runs in its own process, as cron or a task worker would run it.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    worker = context.Process(target=_purge_process, args=(older_than, pace, batch_size, results))
    worker.start()
    during, during_s = send_rate(lambda: not worker.is_alive(), minimum_seconds=0)
    worker.join()
    purged, days_closed, seconds, rested, batches = results.get(timeout=10)
    rate_during = during / during_s
    # Alone again after the purge: other work on the machine changes within
    # minutes, so the baseline is the mean of before and after.
    again, again_s = send_rate(lambda: True, minimum_seconds=send_seconds)
    rate_again = again / again_s
    wal_mb = (wal_position() - wal_before) / 1e6
    report(
        f"purge of {purged:,} rows (older than {older_than} days, {days_closed} days closed "
        f"first; batches of {batch_size:,}, pause {pace[0]} s, ratio {pace[1]}): {seconds:.1f} s "
        f"({purged / seconds:,.0f} rows/s): {seconds - rested:.1f} s working "
        f"({(seconds - rested) * 1000 / max(batches, 1):.0f} ms a batch, roll-up included), "
        f"{rested:.1f} s resting; {wal_mb:,.0f} MB of WAL written meanwhile (whole server)"
    )
    baseline = (rate_alone + rate_again) / 2
    ratio = rate_during / baseline
    report(
        f"send_test_mail: {rate_alone:.0f} msg/s alone before, {rate_during:.0f} msg/s during "
        f"the purge, {rate_again:.0f} msg/s alone after: {ratio:.2f}x of the mean alone"
    )
    # The mails sent while measuring are today's rows: take them out of both sides.
    after = numbers(days + 1)
    today = timezone.localdate()
    sent_today = MailLog.objects.filter(subject="Throughput").count() - sent_earlier
    after_counts = Counter(after[0])
    after_counts["sent"] -= sent_today
    before_days = [d for d in before[1] if d.day < today]
    after_days = [d for d in after[1] if d.day < today]
    identical = dict(+after_counts) == before[0] and before_days == after_days
    report(
        f"counts per status and sent/failed per day before and after the purge: "
        f"{'identical' if identical else 'DIFFERENT'}"
    )
    passed = seconds < PURGE_TARGET_S and ratio >= THROUGHPUT_TARGET
    return passed, identical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL server URL")
    parser.add_argument("--bench-db", default="mailops_retention_bench")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--purge-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="timed requests per mailops page")
    parser.add_argument("--baseline-runs", type=int, default=1)
    parser.add_argument("--send-seconds", type=float, default=20.0)
    parser.add_argument(
        "--batch-size", type=int, default=5000, help="rows per purge batch (PURGE_BATCH_SIZE)"
    )
    parser.add_argument(
        "--pause", type=float, default=0.05, help="least seconds between batches (PURGE_PAUSE)"
    )
    parser.add_argument(
        "--pause-ratio",
        type=float,
        default=1.0,
        help="rest per second of a batch's work (PURGE_PAUSE_RATIO; its default)",
    )
    parser.add_argument("--skip-pages", action="store_true", help="no audit page timings")
    parser.add_argument("--skip-export", action="store_true", help="no export timings")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="a kept, filled database")
    args = parser.parse_args()

    if not args.reuse:
        audit_page.recreate_postgres_database(args.database_url, args.bench_db)
    url = audit_page.postgres_bench_url(args.database_url, args.bench_db)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    audit_page.setup_django(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    settings.MAILOPS = {"ASYNC_THRESHOLD": 10_000}

    def report(line: str) -> None:
        print(line, flush=True)

    ok = True
    try:
        call_command("migrate", verbosity=0)
        if not args.reuse:
            audit_page.fill(args.rows, args.days)
            add_dependants()
        load = os.getloadavg()
        report(f"\nPostgreSQL, {args.rows:,} rows over {args.days} days; load {load[0]:.1f}\n")
        if not args.skip_pages:
            audit_page.TARGET_MS = PAGE_TARGET_MS
            ok &= audit_page.run(args.runs, args.baseline_runs, report, verdict=True)
            report("")
        if not args.skip_export:
            ok &= bench_export(args.export_rows, report)
        purge_ok, identical = bench_purge(
            args.purge_rows,
            args.days,
            args.send_seconds,
            (args.pause, args.pause_ratio),
            args.batch_size,
            report,
        )
        ok &= purge_ok and identical
        report(f"load average at the end: {' '.join(f'{n:.1f}' for n in os.getloadavg())}")
        report(f"\ntargets: {'PASS' if ok else 'FAIL'}")
    finally:
        connections.close_all()
        if not args.keep:
            audit_page.recreate_postgres_database(args.database_url, args.bench_db, drop_only=True)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
