"""pytest plugin: drop the session's test databases when the session ends.

Everywhere else the databases a process created are dropped at exit. A
pytest-xdist worker exits only when the controller tells it to, and the
controller kills every worker still running ten seconds later (execnet's
``Group.terminate``): on a busy machine dropping can take longer, and a killed
worker leaves its databases behind. Dropping in ``pytest_sessionfinish`` runs
before the worker reports that it finished, so no clock is running yet.

pytest loads this module by itself through the package's ``pytest11`` entry
point; with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, pass
``-p transactional_testcase.pytest_plugin``.

.. versionadded:: 0.3
"""

from __future__ import annotations

import pytest

from .provisioning import provisioner


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every test of this process has run: its databases are no longer needed."""
    provisioner.drop_all()
