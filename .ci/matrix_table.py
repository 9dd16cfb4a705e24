"""Turn the version matrix's results into the table of docs/versions.rst.

``nox -f .ci/noxfile.py`` writes one JSON file per session into
``.ci/matrix/``; ``python .ci/matrix_table.py --write`` replaces the table
between the ``matrix-table`` markers of docs/versions.rst with what those sessions
ran (printing it without ``--write``). Each row is one session: the Python
and package versions it installed, and the backends it ran on, each server
backend with its driver's version.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".ci" / "matrix"
START, END = ".. matrix-table-start", ".. matrix-table-end"
COLUMNS = (
    "Python",
    "Flask",
    "Flask-SQLAlchemy",
    "Flask-SQLAlchemy-Lite",
    "SQLAlchemy",
    "Werkzeug",
    "alembic",
    "Flask-Migrate",
    "Flask-Alembic",
)
#: Each backend of the suite and the distribution of its driver (SQLite's is Python's own).
DRIVERS = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg",
    "pymysql": "PyMySQL",
    "mysqlclient": "mysqlclient",
}


def rows() -> list[list[str]]:
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        outcome = json.loads(path.read_text())
        versions = dict(item.split("==", 1) for item in outcome["versions"].split())
        backends = ", ".join(
            f"{name} {versions[DRIVERS[name]]}" if DRIVERS.get(name) in versions else name
            for name in outcome["backends"].split(",")
        )
        if "tests.test_lite" in outcome.get("skipped_modules", ()):
            # Both need Flask 3 (see .ci/noxfile.py).
            versions["Flask-SQLAlchemy-Lite"] = versions["Flask-Alembic"] = "not run"
        found.append([*(versions.get(c, "?") for c in COLUMNS), backends, outcome["result"]])
    # Oldest first: by Flask, Flask-SQLAlchemy, SQLAlchemy, then Python.
    order = [COLUMNS.index(c) for c in ("Flask", "Flask-SQLAlchemy", "SQLAlchemy", "Python")]
    found.sort(key=lambda r: [tuple(int(p) for p in re.findall(r"\d+", r[i])) for i in order])
    return found


def table(data: list[list[str]]) -> str:
    header = [*COLUMNS, "backends", "suite"]
    widths = [max(len(str(x)) for x in column) for column in zip(header, *data, strict=False)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in data), rule])


def main() -> int:
    data = rows()
    if not data:
        print("no results in .ci/matrix: run nox -f .ci/noxfile.py first", file=sys.stderr)
        return 1
    text = table(data)
    if "--write" not in sys.argv:
        print(text)
        return 0
    readme = ROOT / "docs" / "versions.rst"
    content = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(content):
        print(f"docs/versions.rst has no {START} ... {END} markers", file=sys.stderr)
        return 1
    readme.write_text(pattern.sub(lambda _: f"{START}\n\n{text}\n\n{END}", content))
    return 0


if __name__ == "__main__":
    sys.exit(main())
