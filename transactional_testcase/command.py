"""``python -m transactional_testcase``: see, and drop, what provisioning left behind.

Templates (``tt_tpl_<database>_<owner>_<fingerprint>_test``) are kept between
runs so that later runs clone instead of migrating, and ``keepdb`` keeps the
test databases themselves. Both outlive every process, on purpose; this
command lists them and drops those no longer wanted::

    python -m transactional_testcase list [URL ...]
    python -m transactional_testcase drop [URL ...] [--templates | --kept] [--name GLOB ...] [--yes]

A ``URL`` names a server (its database part is ignored); ``sqlite`` (or any
SQLite URL), or no URL at all, means this machine's SQLite cache folder
(``TRANSACTIONAL_TESTCASE_CACHE``, by default ``~/.cache/transactional_testcase``)
and the kept SQLite databases it names. Only databases made by this library
(a template's name, a kept database's marker) whose name contains ``test``
are ever listed or dropped. ``drop`` says what it would drop and drops nothing
without ``--yes``.

.. versionadded:: 0.4
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import time
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL

from .backends import Leftover, backend_for
from .errors import TransactionalTestCaseError, first_line, mask_url
from .provisioning import forget_refused_rename

#: Stands for this machine's SQLite cache on the command line.
_SQLITE = "sqlite"


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (0: done, 1: something could not be dropped, 2: an error)."""
    args = _parser().parse_args(argv)
    try:
        urls = [_parse(value) for value in (args.urls or [_SQLITE])]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    found: dict[int, list[Leftover]] = {}
    for i, url in enumerate(urls):
        try:
            found[i] = [leftover for leftover in backend_for(url).inventory(url) if _safe(leftover)]
        except (TransactionalTestCaseError, sa.exc.SQLAlchemyError, OSError) as exc:
            print(f"error: {mask_url(url)}: {first_line(exc)}", file=sys.stderr)
            return 2
    if args.command == "list":
        for i, url in enumerate(urls):
            _list(found[i], url)
        return 0
    return _drop(_chosen([leftover for i in found for leftover in found[i]], args), args.yes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m transactional_testcase",
        description="List or drop the templates and kept databases transactional_testcase left behind.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,drop}")
    urls_help = (
        "a server URL (e.g. postgresql://postgres@localhost/any, mysql+pymysql://root@localhost); "
        "'sqlite' or none: this machine's SQLite cache"
    )
    listing = commands.add_parser(
        "list", help="show templates and kept databases: name, size, age, schema source"
    )
    listing.add_argument("urls", nargs="*", metavar="URL", help=urls_help)
    drop = commands.add_parser(
        "drop", help="drop templates and kept databases (says what first; --yes drops)"
    )
    drop.add_argument("urls", nargs="*", metavar="URL", help=urls_help)
    which = drop.add_mutually_exclusive_group()
    which.add_argument("--templates", action="store_true", help="only templates")
    which.add_argument("--kept", action="store_true", help="only kept databases (keepdb)")
    drop.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="GLOB",
        help="only names matching GLOB (repeatable; e.g. 'tt_tpl_myapp_*', 'myapp_test')",
    )
    drop.add_argument(
        "--yes", action="store_true", help="drop them (without it: only say what would be dropped)"
    )
    return parser


def _parse(value: str) -> URL:
    if value == _SQLITE:
        return sa.make_url("sqlite://")
    try:
        url = sa.make_url(value)
    except sa.exc.ArgumentError:
        raise ValueError(f"{value!r} is not a database URL (nor 'sqlite')") from None
    return sa.make_url("sqlite://") if url.get_backend_name() == "sqlite" else url


def _safe(leftover: Leftover) -> bool:
    """Never anything whose name lacks ``test``, whatever else says it is ours."""
    return "test" in os.path.basename(leftover.name)


def _chosen(found: list[Leftover], args: argparse.Namespace) -> list[Leftover]:
    chosen = []
    for leftover in found:
        if args.templates and leftover.kind != "template":
            continue
        if args.kept and leftover.kind != "kept":
            continue
        # A SQLite file by its path, its file name, or its name without ".db".
        base = os.path.basename(leftover.name)
        names = (leftover.name, base, os.path.splitext(base)[0])
        if args.name and not any(fnmatch.fnmatchcase(n, g) for g in args.name for n in names):
            continue
        chosen.append(leftover)
    return chosen


def _list(found: list[Leftover], url: URL) -> None:
    if not found:
        print(f"No templates or kept databases on {_server(url)}.")
        return
    templates = sum(1 for leftover in found if leftover.kind == "template")
    print(f"{templates} template(s) and {len(found) - templates} kept database(s) on {_server(url)}:")
    print(_table(found))


def _drop(chosen: list[Leftover], yes: bool) -> int:
    if not chosen:
        print("Nothing to drop.")
        return 0
    if not yes:
        print(f"Would drop {len(chosen)}:")
        print(_table(chosen))
        print("Run again with --yes to drop them.")
        return 0
    failed = 0
    for leftover in chosen:
        try:
            backend_for(leftover.url).drop_leftover(leftover)
        except (TransactionalTestCaseError, sa.exc.SQLAlchemyError, OSError) as exc:
            failed += 1
            print(f"Could not drop {leftover.kind} {leftover.name}: {first_line(exc)}", file=sys.stderr)
        else:
            if leftover.kind == "template":
                forget_refused_rename(leftover.name)
            print(f"Dropped {leftover.kind} {leftover.name}")
    return 1 if failed else 0


def _server(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        from .backends import template_folder

        return f"the SQLite cache {template_folder()}"
    return mask_url(url.set(database=None))


def _table(leftovers: list[Leftover]) -> str:
    rows = [("KIND", "NAME", "SIZE", "AGE", "SOURCE")]
    now = time.time()
    for leftover in leftovers:
        rows.append(
            (
                leftover.kind,
                leftover.name,
                _size(leftover.size),
                _age(now - leftover.made) if leftover.made is not None else "?",
                leftover.source or "?",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    )


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit}"
    return f"{seconds:.0f} s"
