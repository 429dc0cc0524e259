"""One suppression list for every path: test mails, resends and (optionally) site mail.

Addresses get on the list from delivery events (:func:`suppress_from_event`:
hard bounces, repeated soft bounces, complaints, unsubscribes), by hand in
the admin, by CSV import, or from code (:func:`suppress_address`).
Models live in :mod:`mailops.suppression.models` (re-exported by
:mod:`mailops.models`); import the functions from here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_suppressed", "suppress_address", "suppress_from_event", "unsuppress"]


def __getattr__(name: str) -> Any:
    # Lazy: mailops.models imports mailops.suppression.models while the
    # functions here need mailops.models; importing them eagerly would cycle.
    if name in __all__:
        from mailops.suppression import feed

        return getattr(feed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
