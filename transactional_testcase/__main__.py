"""``python -m transactional_testcase list|drop``: see :mod:`transactional_testcase.command`."""

from __future__ import annotations

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
