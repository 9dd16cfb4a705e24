"""Benchmarks of transactional_testcase against its floors and its alternatives, in one run.

    python benchmarks/run.py [--backends sqlite,psycopg2,psycopg,pymysql] [--quick]
                             [--sections 1,2,3,4,5] [--profile]

(``python -m benchmarks`` takes the same options.) The benchmark itself is the
package ``benchmarks``: ``benchmarks/cli.py`` runs the sections, one module
each; ``benchmarks/README.rst`` describes the layout and every figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root on the path
    ROOT = str(Path(__file__).resolve().parent.parent)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)

# The workspace first: it points the library at our temporary folder before the library is imported.
from benchmarks import workspace  # noqa: F401
from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main())
