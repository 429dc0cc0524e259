"""Cost of auditing site mail (MAILOPS["AUDIT_ALL_MAIL"]): the site's own sends, off vs on.

Usage (from the repository root)::

    .venv/bin/python bench/site_mail.py                      # N=1,000, SQLite in a temp dir
    .venv/bin/python bench/site_mail.py --n 2000 --rounds 5 --batch 100
    .venv/bin/python bench/site_mail.py --sqlite-wal         # SQLite in WAL mode
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_bench \\
        .venv/bin/python bench/site_mail.py

With ``DATABASE_URL`` give an empty scratch database: the run creates its
tables there. The SMTP sink is the one of ``bench/throughput.py`` (aiosmtpd
in a process of its own, no TLS, no AUTH). Each round sends N messages
through each path with auditing off, then on, on the same sink and database:

* single: N calls of ``send_mail(...)``, one recipient each, each call its
  own connection (what ``send_mail`` does): audited, one row per call;
* mass: ``send_mass_mail`` in batches of ``--batch`` messages over one
  connection: audited, one bulk insert per batch.

Within a round the two modes alternate in blocks of ``--block`` messages,
so a change in the shared machine's load hits both alike. It prints
messages per second (medians over ``--rounds``) and the median ratio of
audited to unaudited with each round's ratio; the target is at least 0.8x.

An audited ``send_mail`` is one more commit. On SQLite with its default
rollback journal every commit waits for the disk (fsync), which can cost
more than a send on loopback; ``--sqlite-wal`` opens SQLite in WAL mode with
``synchronous=NORMAL`` (commits wait for no disk flush; see the performance page,
"Auditing all site mail").
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import SinkProcess  # noqa: E402 - after the path set-up above

TARGET = 0.8


WAL = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"


def setup_django(
    port: int, db_dir: str, *, sqlite_wal: bool = False, write: str = "background"
) -> str:
    """Configure Django for the sink and database; return how to name the database."""
    import dj_database_url
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    database = dj_database_url.parse(url)
    sqlite = database["ENGINE"] == "django.db.backends.sqlite3"
    if sqlite and sqlite_wal:
        database["OPTIONS"] = {"init_command": WAL}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "mailops"],
        DATABASES={"default": database},
        USE_TZ=True,
        MAILERS={
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 30},
            }
        },
        DEFAULT_FROM_EMAIL="site@example.com",
        MAILOPS={"AUDIT_ALL_MAIL": False, "AUDIT_WRITE": write},
        LOGGING={"version": 1, "loggers": {"mailops": {"level": "ERROR"}}},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, run_syncdb=True)
    if not sqlite:
        return url.split("@")[-1]
    journal = "WAL, synchronous=NORMAL" if sqlite_wal else "rollback journal, synchronous=FULL"
    return f"SQLite (temp file; {journal})"


def set_audit(on: bool) -> None:
    from django.conf import settings

    settings.MAILOPS = {**settings.MAILOPS, "AUDIT_ALL_MAIL": on}


def logged(tag: str) -> int:
    from mailops.models import MailLog

    return MailLog.objects.filter(recipient__startswith=tag).count()


def flush_rows() -> None:
    """Wait for the background writer: the rows' cost counts in the time measured."""
    from mailops.audit.writer import flush

    if not flush(60):
        raise RuntimeError("the background writer did not drain in 60 s")


def bench_single(n: int, tag: str) -> float:
    from django.core.mail import send_mail

    start = time.perf_counter()
    for i in range(n):
        if send_mail("Your code", "Code: 123456", None, [f"{tag}{i}@example.com"]) != 1:
            raise RuntimeError("send_mail sent nothing")
    flush_rows()
    return time.perf_counter() - start


def bench_mass(n: int, tag: str, *, batch: int) -> float:
    from django.core.mail import send_mass_mail

    data = [("Digest", "Your digest", None, [f"{tag}{i}@example.com"]) for i in range(n)]
    start = time.perf_counter()
    for first in range(0, n, batch):
        chunk = data[first : first + batch]
        if send_mass_mail(chunk) != len(chunk):
            raise RuntimeError("send_mass_mail sent less than asked")
    flush_rows()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="messages per path, mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--batch", type=int, default=100, help="messages per send_mass_mail")
    parser.add_argument(
        "--block", type=int, default=100, help="messages per block (modes alternate per block)"
    )
    parser.add_argument(
        "--sqlite-wal", action="store_true", help="open SQLite in WAL mode, synchronous=NORMAL"
    )
    parser.add_argument(
        "--write",
        choices=("background", "inline"),
        default="background",
        help='MAILOPS["AUDIT_WRITE"]: rows by the writer thread (default) or in the sender',
    )
    args = parser.parse_args()

    sink = SinkProcess()
    with tempfile.TemporaryDirectory() as db_dir:
        database = setup_django(sink.port, db_dir, sqlite_wal=args.sqlite_wal, write=args.write)
        print(
            f"N = {args.n:,} messages per path and mode, {args.rounds} round(s), "
            f"SMTP sink on 127.0.0.1:{sink.port}, database: {database}, rows written: {args.write}"
        )
        paths: dict[str, Callable[[int, str], float]] = {
            "single: send_mail, 1 recipient, 1 connection each": bench_single,
            f"mass: send_mass_mail, batches of {args.batch}": lambda n, tag: bench_mass(
                n, tag, batch=args.batch
            ),
        }
        # Tags unique to this run: a reused database still holds earlier runs' rows.
        run = uuid.uuid4().hex[:8]
        for index, path in enumerate(paths.values()):
            for on in (False, True):
                set_audit(on)
                path(50, f"{run}warm{index}{on:d}-")
        # Per path and round: seconds spent with auditing off and on.
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
        for round_ in range(args.rounds):
            for index, (name, path) in enumerate(paths.items()):
                spent = {False: 0.0, True: 0.0}
                # Blocks alternate off/on, on/off, ...: a change in the shared
                # machine's load hits both modes alike.
                for block in range(max(1, args.n // args.block)):
                    for on in (False, True) if block % 2 == 0 else (True, False):
                        set_audit(on)
                        tag = f"{run}r{round_}p{index}b{block}{'on' if on else 'off'}-"
                        spent[on] += path(args.block, tag)
                        rows = logged(tag)
                        if rows != (args.block if on else 0):
                            raise RuntimeError(f"{name}: {rows} rows logged with auditing {on}")
                times[name].append((spent[False], spent[True]))
        sent = max(1, args.n // args.block) * args.block
        print(f"  {'path':<52} {'off msg/s':>10} {'on msg/s':>10} {'on/off':>7}  rounds")
        for name, rounds in times.items():
            off = statistics.median(t[0] for t in rounds)
            on = statistics.median(t[1] for t in rounds)
            ratios = [t[0] / t[1] for t in rounds]
            ratio = statistics.median(ratios)
            verdict = "met" if ratio >= TARGET else "NOT met"
            spread = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"  {name:<52} {sent / off:>10,.0f} {sent / on:>10,.0f} {ratio:>6.2f}x  {spread}"
                f"  (target >= {TARGET}x: {verdict})"
            )
    sink.stop()
    print(f"Sink accepted {sink.count:,} messages.")


if __name__ == "__main__":
    main()
