"""A chunk of claimed rows sent over one or several connections to one mailer.

A :class:`ChunkSender` owns ``concurrency`` sessions
(:class:`~mailops.sending.session.MailerSession`, each its own
``mailers[alias]`` backend) and hands them a chunk's rows through one
shared queue: with one session in the calling thread, with several in one
thread each. A slow connection simply takes fewer rows, and a dead one
leaves its share to the others. Through Django's own SMTP backend the
chunk's message is built once per (subject, body, from) before any thread
starts (:func:`~mailops.sending.composition.chunk_templates`).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait

from django.core.mail import mailers
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import connections

from mailops.mailers.errors import Failure
from mailops.models import MailLog
from mailops.sending.composition import Templates, chunk_templates
from mailops.sending.outcomes import record_failure
from mailops.sending.session import MailerSession
from mailops.sending.strategy import Strategy
from mailops.sending.throttle import RateLimiter
from mailops.sending.wire import WireLedger


class ChunkSender:
    """``concurrency`` connections to one mailer, sharing the chunks handed to :meth:`send`.

    All connections share ``limiter``, so together they keep to the mailer's rate.
    """

    def __init__(
        self,
        alias: str,
        *,
        concurrency: int = 1,
        retry: bool = False,
        limiter: RateLimiter,
        strategy: Strategy | None = None,
    ) -> None:
        count = max(1, concurrency)
        # Raises InvalidMailer before anything is sent.
        backends = [mailers[alias] for _ in range(count)]
        self.alias = alias
        strategy = strategy or Strategy.for_run()
        # Progress marks, so that a killed worker costs at most the row on each wire.
        self.ledger = (
            WireLedger(separate_connection=strategy.marks_connection)
            if strategy.progress_marks
            else None
        )
        self.sessions = [
            MailerSession(
                backend,
                alias,
                retry=retry,
                limiter=limiter,
                track=self.ledger.track() if self.ledger is not None else None,
            )
            for backend in backends
        ]
        # Only Django's own SMTP backend: a subclass may change what is sent.
        self.sends_bytes = type(backends[0]) is SMTPBackend
        # The last chunk's messages (see chunk_templates); empty for other backends.
        self.templates: Templates = {}
        self._pool = (
            ThreadPoolExecutor(max_workers=count, thread_name_prefix=f"mailops-{alias}")
            if count > 1
            else None
        )

    @property
    def dead(self) -> Failure | None:
        """Why no connection can be opened any more, or ``None`` while one can."""
        if all(session.dead is not None for session in self.sessions):
            return self.sessions[0].dead
        return None

    def send(self, rows: list[MailLog]) -> None:
        """Send every row over the live connections; each row ends with its outcome set."""
        if self.sends_bytes:
            backend = self.sessions[0].backend
            self.templates = chunk_templates(
                backend, rows, mailer=self.alias, previous=self.templates
            )
        templates = self.templates
        pending = deque(rows)
        # A round ends with rows left only if a connection died in it and put
        # its row back while the others found the queue empty: go again.
        while pending and (live := [s for s in self.sessions if s.dead is None]):
            if self._pool is None:
                for session in live:
                    session.drain(pending, templates)
                continue
            futures = [self._pool.submit(_drain, session, pending, templates) for session in live]
            try:
                # Every thread is done before a failure is raised: none may still be sending.
                wait(futures)
                for future in futures:
                    future.result()
            except BaseException:
                # A crash in one thread or Ctrl-C: the others stop after their current row.
                pending.clear()
                wait(futures)
                raise
        if not pending:
            return
        # Rows are left over only when every connection is dead.
        failure = self.dead
        assert failure is not None, "rows left unsent while a connection was alive"
        session = self.sessions[0]
        for row in pending:
            if not session.invalid_address(row):
                record_failure(row, failure, retry=session.retry)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for session in self.sessions:
            session.close()
            if session.track is not None:
                session.track.close()


def _drain(session: MailerSession, pending: deque[MailLog], templates: Templates) -> None:
    """:meth:`MailerSession.drain` in a worker thread."""
    try:
        session.drain(pending, templates)
    finally:
        # A backend that used the database did so on this thread's own connection.
        connections.close_all()
