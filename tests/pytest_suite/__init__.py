"""A function-style pytest suite that ``tests/test_pytest_fixtures.py`` runs in subprocesses.

No module here matches a runner's default pattern (``test*.py``, ``conftest.py``):
the project's own discovery collects nothing here, and each run names its
module. ``configure.py`` is the ``conftest.py`` a user would write, loaded with
``-p``; runs that do not load it name the class with the ini option instead.
"""
