"""A pytest plugin for ``test_runners``: the process dies as soon as the session has ended.

``os._exit`` runs no exit handler, as when pytest-xdist kills a worker that has
not exited ten seconds after it was told to: whatever the library had not
dropped by the end of the session is left behind.
"""

from __future__ import annotations

import os
import sys

import pytest

MESSAGE = "exit_after_session: ending with os._exit(0)"


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    print(MESSAGE)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
