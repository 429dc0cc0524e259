"""The documentation's screenshots still show the pages as they are.

``scripts/screenshots`` photographs the demo's pages and writes each page's
title and visible h1/h2 headings beside the PNGs (``headings.json``). This test
renders the same pages, with the same demo data, in Debian's Chromium and
fails when a heading differs: the screenshots are stale, run the script.
"""

from __future__ import annotations

import json
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshots"
PASSWORD = "pw-screenshots"


def load_screenshots_script() -> ModuleType:
    """``scripts/screenshots`` as a module (it has no .py suffix)."""
    name = "mailops_screenshots_script"
    if name in sys.modules:
        return sys.modules[name]
    loader = SourceFileLoader(name, str(SCRIPT))
    spec = spec_from_loader(name, loader)
    assert spec is not None
    module = module_from_spec(spec)
    # Registered first: its dataclasses look their module up while being defined.
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def test_every_screenshot_has_its_recorded_headings() -> None:
    script = load_screenshots_script()
    recorded = json.loads(script.HEADINGS.read_text())
    names = [shot.name for shot in script.SHOTS]
    assert sorted(recorded) == sorted(names), (
        f"{script.HEADINGS.relative_to(script.ROOT)} lists {sorted(recorded)}, the script "
        f"takes {sorted(names)}: run scripts/screenshots."
    )
    for name in names:
        assert (script.SCREENSHOTS / name).stat().st_size > 0, f"{name} is missing"


def test_pages_in_the_screenshots_keep_their_headings(browser: Any, live_server: Any) -> None:
    script = load_screenshots_script()
    script.prepare_demo(PASSWORD)

    rendered = script.capture(browser, live_server.url, PASSWORD, directory=None)

    recorded = json.loads(script.HEADINGS.read_text())
    changed = [
        f"{name}: recorded {recorded.get(name)}, now {now}"
        for name, now in rendered.items()
        if recorded.get(name) != now
    ]
    assert not changed, (
        "The pages shown in docs/_static/screenshots/ have changed their headings, so the "
        "screenshots are stale. Run scripts/screenshots, look at the new PNGs and commit "
        "them with headings.json.\n" + "\n".join(changed)
    )
