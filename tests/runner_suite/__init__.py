"""A small sample suite that ``tests/test_runners.py`` runs under several test runners.

Its only module is ``sample_cases.py``: the name matches neither unittest's and
nose2's default ``test*.py`` nor pytest's ``test_*.py``/``*_test.py``, so the
project's own discovery (``python -m unittest discover -s tests -t .``, nose2
or pytest over ``tests/``) walks into this package and collects nothing. Each
runner in ``test_runners.py`` is pointed at it explicitly.
"""
