"""The isolation tests of :mod:`tests.test_isolation`, on Flask-SQLAlchemy-Lite, on every backend.

The same test bodies, run again by :func:`tests.flavours.run_again` against
:mod:`tests.apps.shop_lite`; the control tests (which switch the library's
mechanisms off on an app of their own) run once, in :mod:`tests.test_isolation`.
"""

from tests.flavours import run_again

run_again("tests.test_isolation", globals())
