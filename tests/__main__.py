"""Run the project's own test suite: ``python -m tests [unittest args]``.

Plain unittest discovery of ``tests/``, ending with one line of totals,
``N passed, M failed, K skipped``, that CI reads. Exits non-zero on any
failure or error.
"""

from __future__ import annotations

import sys
import unittest


def main(argv: list[str]) -> int:
    verbosity = 2 if "-v" in argv else 1
    names = [a for a in argv if not a.startswith("-")]
    loader = unittest.defaultTestLoader
    if names:
        suite = loader.loadTestsFromNames(names)
    else:
        suite = loader.discover("tests", top_level_dir=".")
    result = unittest.TextTestRunner(verbosity=verbosity, failfast="-f" in argv).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
