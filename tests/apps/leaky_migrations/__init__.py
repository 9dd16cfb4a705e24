"""Migrations whose first revision fails with the database URL, password included, in its message.

Apps do report the URL they failed on, and some render it whole: the revision
``0001_leaks_url`` raises ``RuntimeError("cannot migrate <url>")`` with the URL
of the connection Alembic hands it (``render_as_string(hide_password=False)``).
``tests/test_error_messages.py`` checks that the library's error does not pass
the password on. The app is ``tests.apps.bad_migrations``' (one ``gadgets``
table); only the migrations differ.
"""

from __future__ import annotations

import os

HERE = os.path.dirname(os.path.abspath(__file__))
#: Revision id of the migration that fails.
LEAKING_REVISION = "0001_leaks_url"
#: What its error message starts with.
MESSAGE = "cannot migrate "
