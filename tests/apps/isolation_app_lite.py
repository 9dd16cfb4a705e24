""":mod:`tests.apps.isolation_app` on Flask-SQLAlchemy-Lite: its code run again on :mod:`tests.apps.shop_lite`."""

from tests.flavours import run_again

run_again("tests.apps.isolation_app", globals())
