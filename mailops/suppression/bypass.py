"""Which site mail goes out even to suppressed addresses (``MAILOPS["SUPPRESSION_BYPASS"]``).

A message is let through when it is sent while one of the listed functions
runs: the sending thread's stack holds a frame of that function's code. The
default lists Django's ``PasswordResetForm.send_mail``, through which every
password-reset mail of ``django.contrib.auth`` (and of a subclass that calls
``super().send_mail()``) goes, whatever its templates or context: someone whose
mailbox bounced once and works again must still be able to reset a password.

Why the stack and not the message: a password-reset message carries nothing
that says so (its subject and templates are the project's to change), and
Django offers no hook around it. A code object is matched, not a name, so an
unrelated function of the same name does not pass. A form that overrides
``send_mail`` without calling ``super()`` is matched by adding its own path.
"""

from __future__ import annotations

import inspect
import logging
import sys
from functools import lru_cache
from importlib import import_module
from types import CodeType
from typing import Any

from mailops.conf import get_setting

logger = logging.getLogger("mailops.suppression")

# Frames looked at, from the send upwards: a send sits well within this.
MAX_DEPTH = 200


class BypassPathError(ValueError):
    """A ``SUPPRESSION_BYPASS`` entry names nothing importable and callable.

    ``not_function`` tells the two cases apart, so that the system check can
    word them in the site's language (the text itself is English, for the log).
    """

    def __init__(self, path: str, *, not_function: bool = False) -> None:
        self.path = path
        self.not_function = not_function
        what = "a Python function or method" if not_function else "an importable function or method"
        super().__init__(f"{path!r} is not {what}")


def resolve(path: str) -> Any:
    """The object at dotted ``path``: a function, or a method of a class (``mod.Class.meth``)."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target: Any = import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                target = getattr(target, name)
        except AttributeError:
            break
        return target
    raise BypassPathError(path)


def code_of(path: str) -> CodeType:
    """The code object of the function at ``path`` (decorators unwrapped)."""
    target = inspect.unwrap(resolve(path))
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if not isinstance(code, CodeType):
        raise BypassPathError(path, not_function=True)
    return code


@lru_cache(maxsize=8)
def _codes(paths: tuple[str, ...]) -> frozenset[CodeType]:
    codes = set()
    for path in paths:
        try:
            codes.add(code_of(path))
        except BypassPathError as error:
            # manage.py check names it (mailops.W041); mail still goes out.
            logger.warning("SUPPRESSION_BYPASS: %s", error)
    return frozenset(codes)


def bypass_active() -> bool:
    """Whether the current send happens inside a ``SUPPRESSION_BYPASS`` function."""
    codes = _codes(tuple(get_setting("SUPPRESSION_BYPASS")))
    if not codes:
        return False
    frame = sys._getframe(1)
    depth = 0
    while frame is not None and depth < MAX_DEPTH:
        if frame.f_code in codes:
            return True
        frame = frame.f_back  # type: ignore[assignment]
        depth += 1
    return False
