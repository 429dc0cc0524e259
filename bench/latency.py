"""Delivery over a link with latency: Django's send loop against mailops, through a delay proxy.

Usage (from the repository root; Postfix needs root and Debian's postfix package)::

    .venv/bin/python bench/latency.py                       # N=150, delays 0, 10, 25 ms
    .venv/bin/python bench/latency.py --n 300 --delays 10 --no-postfix
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mailops_bench .venv/bin/python bench/latency.py

On loopback a round trip costs nothing, so a send loop that waits for every
reply looks as fast as one that does not. Here every connection goes
through a proxy (a process of its own) that holds each chunk it reads for
the one-way delay, counted from when it was read, and forwards the chunks
in order: bytes written back to back share one delay, as on a real link,
and a reply costs a full round trip. Two servers sit behind it:

* an SMTP sink (aiosmtpd in a process of its own) that advertises
  PIPELINING (RFC 2920) and discards what it accepts;
* a private Postfix 3.7 (``tests/postfix_server.py``'s starter), which
  advertises PIPELINING too and delivers into a Maildir.

For each server and one-way delay the run times N messages through
Django's ``mailers[alias].send_messages(messages)`` on one connection (the
messages built inside the timing, as a caller must), mailops'
``send_test_mail`` inline on one connection, and with
``DELIVERY_CONCURRENCY=4``; it prints messages per second and the ratio to
Django's loop of the same server and delay.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import Sink, free_port  # noqa: E402 - after the path is set

RECIPIENT_DOMAIN = "example.test"  # the private Postfix delivers this domain


# --- the delay proxy -------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward what ``reader`` yields to ``writer``, each chunk ``delay`` s after it was read."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    forwarding = asyncio.create_task(forward())
    try:
        while data := await reader.read(65536):
            chunks.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    chunks.put_nowait((loop.time() + delay, b""))
    await forwarding


async def _serve_proxies(routes: list[tuple[int, int, float]], ready: Any) -> None:
    async def handle(
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        target: int,
        delay: float,
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(
            _pipe(client_reader, server_writer, delay),
            _pipe(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    servers = []
    for listen, target, delay in routes:
        servers.append(
            await asyncio.start_server(
                lambda r, w, t=target, d=delay: handle(r, w, t, d), "127.0.0.1", listen
            )
        )
    ready.set()
    await asyncio.Event().wait()


def _run_proxies(routes: list[tuple[int, int, float]], ready: Any) -> None:
    asyncio.run(_serve_proxies(routes, ready))


# --- the pipelining sink ---------------------------------------------------------


def _serve_sink(port: int, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(
        Sink(pipelining=True), hostname="127.0.0.1", port=port, server_hostname="sink.localhost"
    )
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def start_process(target: Any, *args: Any) -> multiprocessing.process.BaseProcess:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=target, args=(*args, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError(f"{target.__name__} did not start")
    return process


# --- the contenders --------------------------------------------------------------


def setup_django(mailers: dict[str, int], db_dir: str) -> str:
    import dj_database_url
    import django
    from django.conf import settings

    url = os.environ.get("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    database = dj_database_url.parse(url)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"}
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",  # noqa: S106 - a throwaway benchmark process
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "mailops"],
        DATABASES={"default": database},
        USE_TZ=True,
        MAILERS={
            alias: {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 60},
            }
            for alias, port in mailers.items()
        },
        DEFAULT_FROM_EMAIL="bench@example.com",
        MAILOPS={"ASYNC_THRESHOLD": 10**9},
        TASKS={"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}},
        LOGGING={"version": 1, "loggers": {"mailops": {"level": "ERROR"}}},
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, run_syncdb=True)
    return url.split("@")[-1] if "DATABASE_URL" in os.environ else "SQLite (temp file)"


def addresses(n: int, tag: str) -> list[str]:
    return [f"{tag}{i}@{RECIPIENT_DOMAIN}" for i in range(n)]


def django_loop(alias: str, n: int, tag: str) -> float:
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
            mailer=alias,
        )
        for address in addresses(n, tag)
    ]
    sent = mailers[alias].send_messages(messages)
    elapsed = time.perf_counter() - start
    if sent != n:
        raise RuntimeError(f"Django's loop sent {sent} of {n}")
    return elapsed


def mailops_send(alias: str, n: int, tag: str, *, concurrency: int) -> float:
    from django.conf import settings

    from mailops.models import MailTrigger
    from mailops.recipients import from_addresses
    from mailops.services import send_test_mail

    settings.MAILOPS = {**settings.MAILOPS, "DELIVERY_CONCURRENCY": concurrency}
    start = time.perf_counter()
    summary = send_test_mail(
        from_addresses(addresses(n, tag)),
        using=alias,
        trigger=MailTrigger.API,
        subject="Benchmark",
        body="Benchmark body",
    )
    elapsed = time.perf_counter() - start
    if summary.sent != n:
        raise RuntimeError(f"mailops sent {summary.sent} of {n}: {summary.counts}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=150, help="messages per contender and delay")
    parser.add_argument(
        "--delays", type=float, nargs="+", default=[0, 10, 25], help="one-way delays (ms)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="connections, parallel run")
    parser.add_argument("--no-postfix", action="store_true", help="only the SMTP sink")
    args = parser.parse_args()

    sink_port = free_port()
    sink = start_process(_serve_sink, sink_port)
    servers = ["sink"] if args.no_postfix else ["sink", "postfix"]
    # A proxy port per server and delay: the mailers Django is configured with.
    mailers = {f"{name}-{delay:g}": free_port() for name in servers for delay in args.delays}
    db_dir = tempfile.mkdtemp(prefix="mailops-latency-")
    database = setup_django(mailers, db_dir)
    postfix = None
    postfix_root = None
    targets = {"sink": sink_port}
    if not args.no_postfix:
        # Imports mailops' models: after Django is set up.
        from tests.postfix_server import PostfixServer, _postfix_root

        postfix_root = _postfix_root()
        postfix = PostfixServer(postfix_root)
        targets["postfix"] = postfix.port
    routes = [
        (mailers[f"{name}-{delay:g}"], targets[name], delay / 1000)
        for name in servers
        for delay in args.delays
    ]
    proxies = start_process(_run_proxies, routes)
    try:
        print(
            f"N = {args.n} messages per contender; delay proxy on loopback (one-way delay "
            f"per chunk, in order); database: {database}; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} at the start"
        )
        print(f"  {'server, one-way delay':<24} {'contender':<34} {'msg/s':>7}  {'vs Django':>9}")
        for alias in mailers:
            contenders = {
                "Django send_messages, 1 conn.": lambda n, t, a=alias: django_loop(a, n, t),
                "mailops, 1 connection": lambda n, t, a=alias: mailops_send(a, n, t, concurrency=1),
                f"mailops, {args.concurrency} connections": lambda n, t, a=alias: mailops_send(
                    a, n, t, concurrency=args.concurrency
                ),
            }
            base = None
            for index, (name, run) in enumerate(contenders.items()):
                run(5, f"warm-{alias}-{index}-")
                seconds = run(args.n, f"{alias}-{index}-")
                base = base or seconds
                label = f"{alias.split('-')[0]}, {alias.split('-', 1)[1]} ms"
                print(
                    f"  {label:<24} {name:<34} {args.n / seconds:>7,.1f}  {base / seconds:>8.2f}x",
                    flush=True,
                )
        print(f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        proxies.terminate()
        sink.terminate()
        if postfix is not None:
            postfix.stop()
        if postfix_root is not None:
            shutil.rmtree(postfix_root, ignore_errors=True)
        shutil.rmtree(db_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
