"""Sphinx configuration of the mailops documentation site (scripts/docs builds it).

The pages are Markdown (MyST). The build runs with ``-W --keep-going -n``: any
warning, a broken cross-reference included, fails it. It needs no internet
access: the intersphinx inventories of Python and Django are in _inventories/.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import django
from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent

# autodoc imports mailops' public API, which needs configured Django: the test
# suite's settings (the reference project, hermetic: no mail leaves the machine,
# no environment variable of the developer's is read).
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

project = "mailops"
author = "The mailops authors"
copyright = "the mailops authors"
release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# _incoming/: text other branches drop for the coordinator to place, not pages.
exclude_patterns = ["_build", "_incoming", "_inventories", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Headings up to ### get slug anchors, so pages link to "page.md#a-heading".
myst_heading_anchors = 3

# Every cross-reference must resolve: a renamed page, label or Python object
# fails the build instead of leaving a dead link.
nitpicky = True
nitpick_ignore: list[tuple[str, str]] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"

# Offline inventories (CI has no internet access):
# - python3.inv: Debian's python3.11-doc package ships it
#   (/usr/share/doc/python3.11/html/objects.inv); the stdlib targets the docs
#   use are the same in 3.12, and the links go to docs.python.org/3/.
# - django.inv: written by _inventories/make_django_inventory.py (no package
#   ships Django 6.1's inventory); see that script for how to add a target.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inventories/python3.inv"),
    "django": ("https://docs.djangoproject.com/en/6.1/", "_inventories/django.inv"),
}
intersphinx_timeout = 1

html_theme = "furo"
html_title = f"mailops {release}"
html_static_path = ["_static"]
html_show_sourcelink = False


def setup(app: Sphinx) -> None:
    # Django's own object types, so {setting}`MAILERS` and {django-admin}`migrate`
    # resolve against Django's inventory the way Django's docs write them.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
    app.add_crossref_type(
        "django-admin", "django-admin", indextemplate="pair: %s; django-admin command"
    )
