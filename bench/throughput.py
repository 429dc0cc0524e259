"""Throughput of mailops against Django's bare send loop and django-post-office.

Usage (from the repository root)::

    .venv/bin/python bench/throughput.py                 # N=10,000, SQLite in a temp dir
    .venv/bin/python bench/throughput.py --n 2000 --rounds 3 --memory-n 0
    .venv/bin/python bench/throughput.py --pipelining   # the sink offers PIPELINING
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_bench \\
        .venv/bin/python bench/throughput.py

With ``DATABASE_URL`` give an empty scratch database: the run creates its
tables there. A local SMTP sink on loopback (aiosmtpd in a process of its
own, no TLS, no AUTH) accepts and discards every message; it offers no
PIPELINING unless ``--pipelining`` (then mailops pipelines, as it does with
Postfix or Gmail; Django and post-office never do). Each round sends
N messages through every contender, on the same sink and database:

* baseline: ``mailers["sink"].send_messages(messages)`` on one connection,
  no logging (the messages are built inside the timing, as a caller must);
* mailops: ``send_test_mail`` inline, one ``MailLog`` row per message (rows
  written, claimed, sent, each outcome written back), with
  ``DELIVERY_CONCURRENCY`` 1 and, separately, ``--concurrency`` connections;
* django-post-office: ``mail.send_many`` + ``mail.send_queued`` with its
  defaults (one process, ``THREADS_PER_PROCESS`` threads, 5 unless set).

It prints messages per second and the ratio to the baseline of the same run
(median over ``--rounds``), then the peak memory (max RSS) of a child
process that sends ``--memory-n`` messages (default 100,000) with mailops.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Sink:
    """aiosmtpd handler that accepts and discards; counts what it accepted (given ``count``).

    With ``pipelining`` its EHLO lists PIPELINING (RFC 2920), as Postfix,
    Gmail and the providers' relays do (aiosmtpd reads pipelined commands in
    order; it only does not say so).
    """

    def __init__(self, count: Any = None, *, pipelining: bool = False) -> None:
        self.count = count
        self.pipelining = pipelining

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.count is not None:
            self.count.value += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_sink(port: int, count: Any, ready: Any, stop: Any, pipelining: bool) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(
        Sink(count, pipelining=pipelining),
        hostname="127.0.0.1",
        port=port,
        server_hostname="sink.localhost",
    )
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class SinkProcess:
    """The SMTP sink in a process of its own, as a real server would be.

    In the benchmark's own process the sink's event loop would compete with
    the code under test for the GIL.
    """

    def __init__(self, *, pipelining: bool = False) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        # One writer (the sink's event loop): no lock needed.
        self._count = context.Value("q", 0, lock=False)
        self._stop = context.Event()
        ready = context.Event()
        self._process = context.Process(
            target=_serve_sink,
            args=(self.port, self._count, ready, self._stop, pipelining),
            daemon=True,
        )
        self._process.start()
        if not ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")

    @property
    def count(self) -> int:
        return int(self._count.value)

    def stop(self) -> None:
        self._stop.set()
        self._process.join(30)


def setup_django(port: int, db_dir: str, *, with_post_office: bool) -> str:
    """Configure Django for the sink and database; return how to name the database."""
    import dj_database_url
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    apps = ["django.contrib.auth", "django.contrib.contenttypes", "mailops"]
    if with_post_office:
        apps.append("post_office")
    database = dj_database_url.parse(url)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # The journal mode the reference project sets (site_config/settings.py).
        database["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"}
    smtp = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 30},
    }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        INSTALLED_APPS=apps,
        DATABASES={"default": database},
        USE_TZ=True,
        # post-office renders its messages through Django templates.
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        MAILERS={"default": smtp, "sink": smtp},
        DEFAULT_FROM_EMAIL="bench@example.com",
        # Deliver inline (the caller waits): what is timed is the whole path.
        MAILOPS={"ASYNC_THRESHOLD": 10**9, "DEFAULT_MAILER": "sink"},
        POST_OFFICE={"BATCH_SIZE": 1000, "LOG_LEVEL": 0, "MESSAGE_ID_ENABLED": True},
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}},
        LOGGING={"version": 1, "loggers": {"mailops": {"level": "ERROR"}}},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, run_syncdb=True)
    return url.split("@")[-1] if "DATABASE_URL" in os.environ else "SQLite (temp file)"


def addresses(n: int, tag: str) -> list[str]:
    return [f"{tag}{i}@example.com" for i in range(n)]


def bench_baseline(n: int, tag: str) -> float:
    from django.core.mail import mailers

    from mailops.sending.composition import build_message, new_message_id

    start = time.perf_counter()
    messages = [
        build_message(
            to=address,
            subject="Benchmark",
            body="Benchmark body",
            from_email="bench@example.com",
            message_id=new_message_id("example.com"),
            mailer="sink",
        )
        for address in addresses(n, tag)
    ]
    sent = mailers["sink"].send_messages(messages)
    elapsed = time.perf_counter() - start
    if sent != n:
        raise RuntimeError(f"baseline sent {sent} of {n}")
    return elapsed


def bench_mailops(n: int, tag: str, *, concurrency: int = 1) -> float:
    from django.conf import settings

    from mailops.models import MailTrigger
    from mailops.recipients import from_addresses
    from mailops.services import send_test_mail

    settings.MAILOPS = {**settings.MAILOPS, "DELIVERY_CONCURRENCY": concurrency}
    start = time.perf_counter()
    summary = send_test_mail(
        from_addresses(addresses(n, tag)),
        using="sink",
        trigger=MailTrigger.API,
        subject="Benchmark",
        body="Benchmark body",
    )
    elapsed = time.perf_counter() - start
    if summary.sent != n:
        raise RuntimeError(f"mailops sent {summary.sent} of {n}: {summary.counts}")
    return elapsed


def bench_post_office(n: int, tag: str) -> float:
    from post_office import mail
    from post_office.models import STATUS, Email

    start = time.perf_counter()
    emails = mail.send_many(
        [
            {
                "sender": "bench@example.com",
                "recipients": [address],
                "subject": "Benchmark",
                "message": "Benchmark body",
            }
            for address in addresses(n, tag)
        ]
    )
    # send_queued() takes one BATCH_SIZE of emails per call.
    while sum(mail.send_queued()):
        pass
    elapsed = time.perf_counter() - start
    sent = Email.objects.filter(pk__in=[e.pk for e in emails], status=STATUS.sent).count()
    if sent != n:
        raise RuntimeError(f"post-office sent {sent} of {n}")
    return elapsed


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    ``VmHWM`` is this program's own high-water mark; ``ru_maxrss`` can still
    hold the parent's size from before the ``exec`` that started this child.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(n: int) -> None:
    """Child process: send ``n`` with mailops, print rate and peak RSS as JSON."""
    sink = SinkProcess()
    with tempfile.TemporaryDirectory() as db_dir:
        setup_django(sink.port, db_dir, with_post_office=False)
        bench_mailops(100, "warm")
        before = rss_mb()
        elapsed = bench_mailops(n, "mem")
    sink.stop()
    print(json.dumps({"n": n, "seconds": elapsed, "peak_mb": rss_mb(), "setup_mb": before}))


BASELINE = "baseline: send_messages, 1 connection, no log"


def contenders(concurrency: int) -> dict[str, Callable[[int, str], float]]:
    from post_office.settings import get_threads_per_process

    paths: dict[str, Callable[[int, str], float]] = {
        BASELINE: bench_baseline,
        "mailops: 1 row/msg, 1 connection": bench_mailops,
    }
    if concurrency > 1:
        paths[f"mailops: 1 row/msg, {concurrency} connections"] = lambda n, tag: bench_mailops(
            n, tag, concurrency=concurrency
        )
    paths[f"django-post-office: {get_threads_per_process()} threads"] = bench_post_office
    return paths


def report(n: int, results: dict[str, list[float]], cpu: dict[str, list[float]]) -> None:
    """Median messages per second per path, its ratios to the baseline and post-office, CPU."""
    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians[BASELINE]
    post_office = next((s for name, s in medians.items() if "post-office" in name), None)
    print(
        f"  {'path':<46} {'msg/s':>7}  {'vs baseline':>11}  {'vs post-office':>14}"
        f"  {'CPU/msg':>8}  runs (s)"
    )
    for name, seconds in medians.items():
        vs_po = f"{post_office / seconds:.2f}x" if post_office else "-"
        runs = ", ".join(f"{t:.2f}" for t in results[name])
        cpu_us = statistics.median(cpu[name]) / n * 1e6
        print(
            f"  {name:<46} {n / seconds:>7,.0f}  {base / seconds:>10.2f}x  {vs_po:>14}"
            f"  {cpu_us:>5,.0f} us  {runs}"
        )
    print(
        "  (CPU/msg: this process, all its threads; the sink's and a PostgreSQL "
        "server's CPU are not in it)"
    )
    for name, seconds in medians.items():
        if not name.startswith("mailops"):
            continue
        verdict = f"  {name}: {base / seconds:.2f}x baseline (target >= 2.0)"
        if post_office:
            verdict += f", {post_office / seconds:.2f}x post-office (target >= 2.0)"
        print(verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages per path and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (median reported)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="connections for the parallel mailops run"
    )
    parser.add_argument("--memory-n", type=int, default=100_000, help="messages for peak RSS")
    parser.add_argument(
        "--pipelining",
        action="store_true",
        help="the sink advertises PIPELINING, as real relays do (default: lock-step only)",
    )
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return

    sink = SinkProcess(pipelining=args.pipelining)
    with tempfile.TemporaryDirectory() as db_dir:
        database = setup_django(sink.port, db_dir, with_post_office=True)
        import logging

        # post-office logs every batch at INFO through a handler of its own.
        logging.getLogger("post_office").setLevel(logging.WARNING)
        print(
            f"N = {args.n:,} messages per path, {args.rounds} round(s), "
            f"SMTP sink (aiosmtpd, own process, "
            f"{'PIPELINING advertised' if args.pipelining else 'no PIPELINING: lock-step'}) "
            f"on 127.0.0.1:{sink.port}, database: {database}"
        )
        paths = contenders(args.concurrency)
        for name, path in paths.items():
            path(50, f"warm{len(name)}-")  # imports, first connection, caches
        results: dict[str, list[float]] = {name: [] for name in paths}
        cpu: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(args.rounds):
            for index, (name, path) in enumerate(paths.items()):
                started = time.process_time()
                results[name].append(path(args.n, f"r{round_}p{index}-"))
                cpu[name].append(time.process_time() - started)
        report(args.n, results, cpu)
    sink.stop()
    print(f"Sink accepted {sink.count:,} messages.")

    if args.memory_n:
        child = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(args.memory_n)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        verdict = "met" if result["peak_mb"] < 100 else "NOT met"
        print(
            f"Peak memory, mailops sending {result['n']:,} messages in one call (child process, "
            f"{database}): {result['peak_mb']:.0f} MB max RSS, {result['setup_mb']:.0f} MB "
            f"before sending ({result['n'] / result['seconds']:,.0f} msg/s); "
            f"target < 100 MB: {verdict}"
        )


if __name__ == "__main__":
    main()
