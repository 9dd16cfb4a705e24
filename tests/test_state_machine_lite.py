"""The state machine of :mod:`tests.test_state_machine`, on Flask-SQLAlchemy-Lite, on every backend.

The same machine and pinned tests, run again by
:func:`tests.flavours.run_again` against :mod:`tests.apps.shop_lite`.
"""

from tests.flavours import run_again

run_again("tests.test_state_machine", globals())
