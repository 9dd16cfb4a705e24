"""What a user's ``conftest.py`` holds: the class the fixtures run (loaded here with ``-p``)."""

from __future__ import annotations

import pytest

from tests.pytest_suite.sample_functions import FunctionsBase


@pytest.fixture(scope="session")
def transactional_testcase_class() -> type[FunctionsBase]:
    return FunctionsBase
