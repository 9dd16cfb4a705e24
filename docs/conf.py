"""Sphinx configuration of the transactional_testcase documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
after ``pip install -e '.[docs]'``. Nothing is fetched from the network.
"""

from __future__ import annotations

import logging
import typing as t

import transactional_testcase

project = "transactional_testcase"
author = "the transactional_testcase authors"
copyright = "the transactional_testcase authors"
release = transactional_testcase.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

root_doc = "index"
exclude_patterns = ["_build"]
default_role = "literal"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"transactional_testcase {release}"

#: The user guide's toctree lists its pages, then ``guide/*`` for pages added
#: later. While every page is listed, that glob matches nothing, which Sphinx
#: reports as a warning of no type that ``suppress_warnings`` cannot name.
GUIDE_GLOB = "guide/*"


class _EmptyGuideGlob(logging.Filter):
    """Drop only the warning that the guide's catch-all glob matched no page."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.args == (GUIDE_GLOB,) and "glob pattern" in str(record.msg))


def setup(app: t.Any) -> None:
    logging.getLogger("sphinx.sphinx.directives.other").addFilter(_EmptyGuideGlob())
