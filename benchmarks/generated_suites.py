"""The texts of the modules the benchmark writes and runs in subprocesses.

``WARM_MODULE`` (section 3c) is one TransactionalTestCase class run as a script;
``SUITE_MODULE`` and ``CONTROL_MODULE`` (section 4) are the 400-test suites run
under pytest, each process recording its test phase in ``$BENCH_OUT``.
"""

#: The class hooks of the generated TransactionalTestCase modules (sections 3c and 6):
#: they time the app's create_app and the whole setUpClass into ``TIMES``.
_TIMED_HOOKS = """\
    @classmethod
    def create_app(cls, config):
        t0 = time.perf_counter()
        app = create_app(config)
        TIMES["create_app"] = time.perf_counter() - t0
        return app

    @classmethod
    def setUpClass(cls):
        t0 = time.perf_counter()
        super().setUpClass()
        TIMES["setup_class"] = time.perf_counter() - t0
"""

WARM_MODULE = (
    '''\
"""One TransactionalTestCase class; reports how long its setUpClass and provisioning took."""
import json, os, time, unittest

import sqlalchemy as sa

from benchmarks.schema import MIGRATIONS_DIR, create_app
from transactional_testcase import TransactionalTestCase
from transactional_testcase.provisioning import provisioner

# Import the dialect and driver now: a one-time cost of any process, not of provisioning.
sa.make_url(os.environ["BENCH_URL"]).get_dialect().import_dbapi()
TIMES = {}
_ensure = provisioner.ensure


def timed_ensure(*args, **kwargs):
    t0 = time.perf_counter()
    TIMES["how"] = _ensure(*args, **kwargs)
    TIMES["ensure"] = time.perf_counter() - t0
    return TIMES["how"]


provisioner.ensure = timed_ensure


class WarmCase(TransactionalTestCase):
    database_url = os.environ["BENCH_URL"]
    alembic_config = str(MIGRATIONS_DIR)

'''
    + _TIMED_HOOKS
    + """
    def test_empty(self):
        self.assertIsNotNone(self.db.session.connection())


if __name__ == "__main__":
    program = unittest.main(exit=False, argv=["warm_case"])
    if not program.result.wasSuccessful() or program.result.testsRun != 1:
        raise SystemExit(1)
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(TIMES, f)
"""
)

#: What both generated suites share: each process records its test phase (first
#: setUpClass to last tearDownClass) in $BENCH_OUT at exit...
_PHASE_RECORDER = """\
PHASE = {"start": None, "end": None, "tests": 0, "setup": 0.0, "cpu_start": 0.0, "cpu_end": 0.0}


@atexit.register
def _dump():
    if PHASE["start"] is not None:
        path = os.path.join(os.environ["BENCH_OUT"], "phase-%d.json" % os.getpid())
        with open(path, "w") as f:
            json.dump(PHASE, f)
"""
#: ... and their 400 tests: 20 classes of 20, numbered, each calling ``work(i)``.
_CLASSES = """\
def _test(i):
    def test(self):
        self.work(i)
    return test


for _c in range(20):
    _name = "{prefix}%02d" % _c
    globals()[_name] = type(_name, ({base},), {{
        "__module__": __name__, **{{"test_%02d" % _t: _test(_c * 20 + _t) for _t in range(20)}}}})
"""

SUITE_MODULE = (
    '''\
"""400 tests (20 classes x 20) doing a little ORM work each; records its test phase per process."""
import atexit, json, os, time

import sqlalchemy as sa

from benchmarks.schema import MIGRATIONS_DIR, create_app, db, models
from transactional_testcase import TransactionalTestCase

'''
    + _PHASE_RECORDER
    + """

class SuiteBase(TransactionalTestCase):
    database_url = os.environ["BENCH_URL"]
    alembic_config = str(MIGRATIONS_DIR)

    @classmethod
    def create_app(cls, config):
        return create_app(config)

    @classmethod
    def setUpClass(cls):
        now = time.monotonic()
        if PHASE["start"] is None:
            PHASE["start"] = now
            PHASE["cpu_start"] = time.process_time()
        super().setUpClass()
        PHASE["setup"] += time.monotonic() - now

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        PHASE["end"] = time.monotonic()
        PHASE["cpu_end"] = time.process_time()

    def work(self, i):
        user = models.User(email="user%d@example.com" % i, username="user%d" % i, password_hash="x")
        post = models.Post(author=user, title="Post %d" % i, slug="post-%d" % i, body="text " * 20,
                           status="published")
        post.tags = [models.Tag(name="tag%da" % i), models.Tag(name="tag%db" % i)]
        post.comments.append(models.Comment(author=user, body="first!"))
        db.session.add(post)
        db.session.commit()
        rows = db.session.execute(
            sa.select(models.Post.title, sa.func.count(models.Tag.id))
            .join(models.Post.tags)
            .group_by(models.Post.id, models.Post.title)
        ).all()
        self.assertEqual([tuple(r) for r in rows], [("Post %d" % i, 2)])
        PHASE["tests"] += 1


"""
    + _CLASSES.format(base="SuiteBase", prefix="TestSuite")
)


CONTROL_MODULE = (
    '''\
"""The machine's own ceiling: 400 CPU-bound tests (20 classes x 20) that touch no database."""
import atexit, json, os, time, unittest

'''
    + _PHASE_RECORDER
    + """

class ControlBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if PHASE["start"] is None:
            PHASE["start"] = time.monotonic()
            PHASE["cpu_start"] = time.process_time()

    @classmethod
    def tearDownClass(cls):
        PHASE["end"] = time.monotonic()
        PHASE["cpu_end"] = time.process_time()

    def work(self, i):
        total = 0
        for k in range(60000):
            total += k ^ i
        self.assertGreater(total, 0)
        PHASE["tests"] += 1


"""
    + _CLASSES.format(base="ControlBase", prefix="TestControl")
)

#: Section 6's four tests, the same in both suites: each adds a user, commits and counts.
_SMALL_TESTS = "".join(
    f"""    def test_{i}(self):
        db.session.add(models.User(email="u{i}@example.com", username="u{i}", password_hash="x"))
        db.session.commit()
        self.assertEqual(db.session.query(models.User).count(), 1)

"""
    for i in range(4)
)

#: Section 6: a small suite the way it was written before the library: ``create_all()``
#: and ``drop_all()`` around every test.
SMALL_ORIGINAL_MODULE = (
    '''\
"""Four tests, each on tables made with create_all() and dropped with drop_all()."""
import os, sys, unittest

from benchmarks.schema import create_app, db, models


class Original(unittest.TestCase):
    def setUp(self):
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": os.environ["BENCH_URL"], "TESTING": True})
        self.ctx = self.app.app_context()
        self.ctx.push()
        db.create_all()

    def tearDown(self):
        db.session.remove()
        db.drop_all()
        self.ctx.pop()

'''
    + _SMALL_TESTS
    + """
if __name__ == "__main__":
    program = unittest.main(exit=False, argv=["small_original"])
    sys.exit(0 if program.result.wasSuccessful() and program.result.testsRun == 4 else 1)
"""
)

#: Section 6: the same four tests on the library, reporting where its fixed costs went.
SMALL_LIBRARY_MODULE = (
    '''\
"""The four tests on TransactionalTestCase; the library's fixed costs in $BENCH_OUT."""
import json, os, sys, time, unittest

import sqlalchemy as sa

from benchmarks.schema import MIGRATIONS_DIR, create_app, db, models

# Import the dialect and driver now: a one-time cost of any process (the
# original's too), not the library's.
sa.make_url(os.environ["BENCH_URL"]).get_dialect().import_dbapi()
TIMES = {}
t0 = time.perf_counter()
from transactional_testcase import TransactionalTestCase
from transactional_testcase.alembic_runner import AlembicProject
from transactional_testcase.backends import backend_for
from transactional_testcase.provisioning import provisioner

TIMES["import_library"] = time.perf_counter() - t0
_migrate = AlembicProject.migrate


def timed_migrate(*args, **kwargs):
    t0 = time.perf_counter()
    try:
        return _migrate(*args, **kwargs)
    finally:
        TIMES["migrate"] = TIMES.get("migrate", 0.0) + time.perf_counter() - t0


AlembicProject.migrate = timed_migrate
# The server's own statement that creates the empty test database (DROP IF
# EXISTS + CREATE DATABASE): part of the library's share, shown apart.
_backend = type(backend_for(sa.make_url(os.environ["BENCH_URL"])))
_recreate = _backend.recreate


def timed_recreate(self, url):
    t0 = time.perf_counter()
    try:
        return _recreate(self, url)
    finally:
        TIMES["create_database"] = TIMES.get("create_database", 0.0) + time.perf_counter() - t0


_backend.recreate = timed_recreate
# Whether the build started from an earlier schema's template (a revision added).
_earlier = type(provisioner)._earlier_templates


def recorded_earlier(self, schema, targets):
    found = _earlier(self, schema, targets)
    TIMES["started_from_template"] = found is not None
    return found


type(provisioner)._earlier_templates = recorded_earlier


class Small(TransactionalTestCase):
    database_url = os.environ["BENCH_URL"]
    alembic_config = os.environ.get("BENCH_MIGRATIONS", str(MIGRATIONS_DIR))

'''
    + _TIMED_HOOKS
    + """
    @classmethod
    def tearDownClass(cls):
        t0 = time.perf_counter()
        super().tearDownClass()
        TIMES["teardown_class"] = time.perf_counter() - t0

"""
    + _SMALL_TESTS
    + """
if __name__ == "__main__":
    program = unittest.main(exit=False, argv=["small_library"])
    if not program.result.wasSuccessful() or program.result.testsRun != 4:
        sys.exit(1)
    t0 = time.perf_counter()
    provisioner.drop_all()  # what the exit does (atexit), timed here
    TIMES["exit"] = time.perf_counter() - t0
    TIMES.setdefault("migrate", 0.0)
    TIMES.setdefault("create_database", 0.0)
    TIMES.setdefault("started_from_template", False)
    TIMES["library"] = os.path.dirname(os.path.abspath(sys.modules["transactional_testcase"].__file__))
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(TIMES, f)
"""
)
