"""``python -m benchmarks [options]``: the same as ``python benchmarks/run.py [options]``."""

from __future__ import annotations

import sys

# The workspace first: it points the library at our temporary folder before the library is imported.
from benchmarks import workspace  # noqa: F401
from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main(command="-m benchmarks", prog="python -m benchmarks"))
