"""Provisioning: what test databases and templates exist, across processes and runs.

The provisioner's promises are about more than one process: a migrated
template left by one run is cloned by the next, a kept database (``keepdb``)
outlives its process, concurrent processes never build the same template
twice, parallel workers get databases of their own. So the tests here run a
one-class suite on the ``library`` app (Flask-Migrate, ``tests/apps/library``)
in child processes, read what each reports (``provisioner.stats``, and what
its test saw: tables, ``alembic_version``, the server's name for its
database), and look at the servers with connections of their own.

Children are fresh interpreters started ahead of time: each imports the app,
then blocks until it is handed its job on stdin. The import (about a second)
overlaps the previous child's work, and the concurrency tests hand several
children their jobs at the same moment.

What is covered, per backend:

* ``Templates``: a first process migrates and leaves a template named
  ``tt_tpl_<owner>_<fp16>_test``; changed migrations build again and drop the
  stale template; a later process clones (no migration) the full schema, and
  with ``TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES=0`` drops the template at exit;
* ``KeptDatabases``: ``keepdb`` through the environment and the class
  attribute; a kept database whose fingerprint no longer matches (migrations
  changed, marker overwritten by hand) is rebuilt, never used; rows a test
  committed for real are not left in it (the library empties the tables); a
  table a test committed for real must not be kept either;
* ``Concurrency``: three workers (``TRANSACTIONAL_TESTCASE_WORKER``,
  ``PYTEST_XDIST_WORKER``) started together on a missing template build it
  once, each in a database with its suffix, and drop their own at exit;
* ``OtherDrivers``: build and keep through psycopg 3 and mysqlclient.

``Templates``, ``KeptDatabases`` and ``Concurrency`` (2 to 5 child processes
a test, a few seconds each on a server) run on SQLite, psycopg2 and PyMySQL;
``OtherDrivers`` (2 children) is the cheap check of the second driver of each
server. ``Fingerprints`` checks, in-process and without a database, what the
fingerprint and worker names depend on.

Not repeated here: a process killed with SIGKILL and a half-built template
(``test_faults.ProcessLeftovers``), databases dropped at exit
(``test_lifecycle.DropAtExitTest``), in-process reuse
(``test_lifecycle.ProvisioningRun``, ``test_migrations.MigrateOnce``), unsafe
database names (``test_errors.UnsafeNameTest``), real parallel runners
(``test_runners``).

Every database here is ``..._prov_<purpose>`` (``tt_<driver>_test_prov_...``,
SQLite ``prov_<purpose>_test.db``); SQLite templates go to a temporary
``TRANSACTIONAL_TESTCASE_CACHE`` of each test. Each test drops what it made,
kept databases and templates included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import typing as t
import unittest
import warnings
from unittest import mock

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from tests.admin import admin_connection as server_admin
from tests.admin import (
    database_exists,
    drop_database,
    leftover_rows,
    own_connection,
    server_databases,
    table_names,
)
from tests.apps import library
from tests.matrix import BackendUnderTest, OuterCase, backends_named, bind_url, generate_per_backend
from tests.running import transcript
from transactional_testcase import provisioning
from transactional_testcase.alembic_runner import AlembicProject
from transactional_testcase.backends import MARKER_SUFFIX, Backend, admin_session, backend_for, parse_label
from transactional_testcase.extension import FlaskSQLAlchemy
from transactional_testcase.schema import AlembicSchema, CreateAllSchema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: One driver per server, and SQLite: where the expensive tests run.
MAIN = ("sqlite", "psycopg2", "pymysql")
#: The other driver of each server: a cheaper check.
OTHER = ("psycopg", "mysqlclient")
#: Generous bound for a child process: only a hang (a lock never released) reaches it.
TIMEOUT = 120.0

V1 = library.MIGRATIONS
V2 = library.variant("v2_loans")
V1_TABLES = frozenset({"authors", "books", "alembic_version"})
V2_TABLES = V1_TABLES | {"loans"}
#: A table the tests create by hand in a kept database: seen again only if it was kept.
SENTINEL = "prov_sentinel"
#: What the library names a template: ``tt_tpl_<database>_<owner>_<fingerprint>_test``.
TEMPLATE_NAME = re.compile(r"^tt_tpl_[a-z0-9_]{1,24}_[0-9a-f]{8}_[0-9a-f]{12}_test$")
STATS_ZERO = {"reuse": 0, "keep": 0, "clone": 0, "build": 0}
#: Environment variables of the parent that must not leak into a child unless a test sets them.
CHILD_UNSET = (
    "PYTEST_XDIST_WORKER",
    provisioning.WORKER_ENV,
    provisioning.KEEPDB_ENV,
    provisioning.KEEP_TEMPLATES_ENV,
    "TRANSACTIONAL_TESTCASE_CACHE",
    "TEST_DATABASE_URL",
)


@contextlib.contextmanager
def quiet_alembic() -> t.Iterator[None]:
    """Without Alembic's warning about the fixtures' space-separated ``version_locations``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*path_separator", category=DeprecationWarning)
        yield


def heads(folder: str) -> list[str]:
    """The head revisions of the migrations in ``folder`` (read through its alembic.ini)."""
    config = Config(os.path.join(folder, "alembic.ini"))
    config.set_main_option("script_location", folder)
    with quiet_alembic():
        return sorted(ScriptDirectory.from_config(config).get_heads())


V1_HEADS = heads(V1)
V2_HEADS = heads(V2)


# -- the child process ------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json
    import os
    import sys
    import time
    import unittest

    import sqlalchemy as sa

    from tests.apps import library
    from transactional_testcase import CommittingTestCase, TransactionalTestCase, schema
    from transactional_testcase.provisioning import provisioner

    line = sys.stdin.readline()
    if not line:  # never handed a job: the test that started it ended early
        sys.exit(0)
    job = json.loads(line)
    seen = {}

    if job.get("everyone"):
        # A race: whoever builds holds the template lock until every process
        # has started provisioning, and a little longer.
        build = schema.AlembicSchema.build

        def slow_build(self, app, db, engines):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(map(os.path.exists, job["everyone"])):
                time.sleep(0.01)
            seen["everyone_started"] = all(map(os.path.exists, job["everyone"]))
            time.sleep(0.5)
            build(self, app, db, engines)

        schema.AlembicSchema.build = slow_build


    def wait_for(path):
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} never appeared")
            time.sleep(0.01)


    def describe(conn):
        inspector = sa.inspect(conn)
        schema = {}
        for table in sorted(inspector.get_table_names()):
            schema[table] = {
                "columns": [[c["name"], str(c["type"]), c["nullable"]] for c in inspector.get_columns(table)],
                "pk": inspector.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    [fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]]
                    for fk in inspector.get_foreign_keys(table)
                ),
            }
        return schema


    def database_name(conn):
        dialect = conn.dialect.name
        if dialect == "postgresql":
            return conn.exec_driver_sql("SELECT current_database()").scalar()
        if dialect == "sqlite":
            return os.path.basename(conn.exec_driver_sql("PRAGMA database_list").all()[0][2])
        return conn.exec_driver_sql("SELECT DATABASE()").scalar()


    class Provisioned(TransactionalTestCase):
        database_url = job["url"]
        alembic_config = job["alembic"]
        keepdb = job.get("keepdb", False)

        @classmethod
        def create_app(cls, config):
            return library.create_app(config)

        @classmethod
        def setUpClass(cls):
            if job.get("started"):
                open(job["started"], "w").close()
            super().setUpClass()

        def test_provisioned(self):
            conn = self.session.connection()
            seen["database"] = database_name(conn)
            seen["schema"] = describe(conn)
            seen["versions"] = sorted(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
            seen["rows"] = library.count(library.Author) + library.count(library.Book)
            # The id a first insert gets: the same in every run from one template
            # (a counter the tests advanced is not carried into the next run).
            first = library.Author(name="first")
            library.db.session.add(first)
            library.db.session.flush()
            seen["first_id"] = first.id
            mode = job.get("mode")
            if mode == "hold":
                open(job["inside"], "w").close()
                wait_for(job["release"])
            elif mode == "escape_rows":
                library.db.session.add(library.Author(name="escaped"))
                library.db.session.flush()
                self.db.session.connection().commit()  # committed for real: an IsolationError
            elif mode == "bloat":  # rows rolled back, but they grew the table's files
                size = "SELECT pg_total_relation_size('authors')"
                seen["empty_size"] = conn.exec_driver_sql(size).scalar()
                library.db.session.add_all(library.Author(name="x" * 90) for _ in range(job["rows"]))
                library.db.session.flush()
                seen["bloated_size"] = conn.exec_driver_sql(size).scalar()
            elif mode == "escape_schema":
                conn.exec_driver_sql("CREATE TABLE prov_escaped (id INTEGER PRIMARY KEY)")
                self.db.session.connection().commit()


    class Committing(CommittingTestCase):
        database_url = job["url"]
        alembic_config = job["alembic"]

        @classmethod
        def create_app(cls, config):
            return library.create_app(config)

        def test_commits(self):
            library.db.session.add(library.Author(name="committed"))
            library.db.session.commit()
            seen["committed"] = library.count(library.Author)


    cases = [Provisioned]
    if job.get("committing"):
        cases.append(Committing)
    if job.get("again"):
        cases.append(type("ProvisionedAgain", (Provisioned,), {}))
    suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromTestCase(c) for c in cases)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    print("PROVISIONED " + json.dumps({"stats": provisioner.stats, "seen": seen}), flush=True)
    sys.exit(0 if result.wasSuccessful() else 1)
    """
)


class Report(t.NamedTuple):
    """What a child process reported, and how it ended."""

    returncode: int
    output: str
    stats: dict[str, int]
    seen: dict[str, t.Any]

    @property
    def tables(self) -> set[str]:
        return set(self.seen.get("schema", {}))


class Child:
    """A fresh interpreter that has imported the app and waits for its job on stdin."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def start(self, **job: t.Any) -> None:
        """Hand the child its job: it runs the suite at once."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.close()

    def finish(self) -> Report:
        """Wait until the child has exited (its at-exit drops done); what it reported."""
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the child process hung:\n{self.output()}") from None
        output = self.output()
        lines = [ln for ln in output.splitlines() if ln.startswith("PROVISIONED ")]
        if len(lines) != 1:
            raise AssertionError(
                f"the child process reported nothing (exit {self.proc.returncode}):\n{output}"
            )
        reported = json.loads(lines[0].removeprefix("PROVISIONED "))
        return Report(self.proc.returncode, output, reported["stats"], reported["seen"])

    def run(self, **job: t.Any) -> Report:
        self.start(**job)
        return self.finish()

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def close(self) -> None:
        """Let a child that never got a job exit; kill one that does not end."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # an empty job: it exits at once
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()


def worker_database(url: str, worker: str) -> str:
    """``url`` as worker ``worker`` names it: ``name_<worker>``, SQLite ``root_<worker>.db``."""
    parsed = sa.make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        root, ext = os.path.splitext(name)
        return parsed.set(database=f"{root}_{worker}{ext}").render_as_string(hide_password=False)
    return parsed.set(database=f"{name}_{worker}").render_as_string(hide_password=False)


def touch(path: str) -> None:
    with open(path, "a", encoding="utf-8"):
        pass


def database_name(url: str) -> str:
    """The name the server (SQLite: the file) gives the database of ``url``."""
    return os.path.basename(sa.make_url(url).database or "")


# -- the per-backend cases --------------------------------------------------------------------


if t.TYPE_CHECKING:
    # Mixins are checked as the classes they end up in; at run time they must
    # not be TestCases themselves, or unittest would collect them.
    _Outer = OuterCase
else:
    _Outer = object


class _Processes(_Outer):
    """Child processes, the databases and templates they leave, and cleaning all of it up."""

    backend: t.ClassVar[BackendUnderTest]

    def setUp(self) -> None:
        super().setUp()
        # SQLite templates (and template lock files) of this test only.
        self.cache = tempfile.mkdtemp(prefix="tt_prov_cache_")
        self.addCleanup(shutil.rmtree, self.cache, True)

    @property
    def sqlite(self) -> bool:
        return self.backend.name == "sqlite"

    def database(self, purpose: str, *workers: str) -> str:
        """The URL of this test's database ``prov_<purpose>``; it (and its workers' ones) dropped after."""
        url = bind_url(self.backend, f"prov_{purpose}")
        self.addCleanup(self.drop_templates, url)
        for name in (url, *(worker_database(url, w) for w in workers)):
            self.addCleanup(self.drop, name)
        return url

    def drop(self, url: str) -> None:
        drop_database(url, force=True)
        if self.sqlite:
            path = (sa.make_url(url).database or "") + MARKER_SUFFIX
            if os.path.exists(path):
                os.unlink(path)

    def drop_templates(self, url: str) -> None:
        if not self.sqlite:  # SQLite's go with the cache folder
            for name in self.templates(url):
                drop_database(self.template_url(url, name), force=True)

    def child(self, **env: str) -> Child:
        """A child process started now with these environment variables; closed after the test."""
        base = {k: v for k, v in os.environ.items() if k not in CHILD_UNSET}
        base["PYTHONPATH"] = ROOT + os.pathsep + base.get("PYTHONPATH", "")
        base["TRANSACTIONAL_TESTCASE_CACHE"] = self.cache
        base[provisioning.KEEP_TEMPLATES_ENV] = "0"
        child = Child({**base, **env})
        self.addCleanup(child.close)
        return child

    def children(self, *envs: dict[str, str]) -> list[Child]:
        """One child per environment, all importing at once."""
        return [self.child(**env) for env in envs]

    # -- what the servers hold -------------------------------------------------------------

    def templates(self, url: str) -> set[str]:
        """The names of the templates of ``url``'s database, whatever their fingerprint."""
        prefix = provisioning._template_prefix(sa.make_url(url), None)
        if self.sqlite:
            return {
                n[: -len(".db")] for n in os.listdir(self.cache) if n.startswith(prefix) and n.endswith(".db")
            }
        return server_databases(url, prefix)

    def template_url(self, url: str, name: str) -> str:
        if self.sqlite:
            return "sqlite:///" + os.path.join(self.cache, name + ".db")
        return sa.make_url(url).set(database=name).render_as_string(hide_password=False)

    def the_template(self, url: str) -> str:
        """The name of the one template of ``url``'s database (fails unless there is exactly one)."""
        found = self.templates(url)
        self.assertEqual(len(found), 1, f"expected one template, found {sorted(found)}")
        (name,) = found
        self.assertRegex(name, TEMPLATE_NAME)
        self.assertIn("test", name, "a template must be a test database by its name")
        self.assertLessEqual(len(name), 63, "longer than PostgreSQL's identifiers")
        own = os.path.splitext(database_name(url))[0][:24].rstrip("_")
        self.assertTrue(name.startswith(f"tt_tpl_{own}_"), f"{name} does not name its database {own}")
        return name

    def marker(self, url: str) -> str | None:
        """The fingerprint recorded on a kept database, read with a connection of our own."""
        parsed = sa.make_url(url)
        if self.sqlite:
            try:
                with open((parsed.database or "") + MARKER_SUFFIX, encoding="utf-8") as f:
                    text = f.read()
            except FileNotFoundError:
                return None
        else:
            query = (
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"
                if parsed.get_backend_name() == "postgresql"
                else "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"
            )
            with server_admin(url) as conn:
                text = conn.execute(sa.text(query), {"n": parsed.database}).scalar()
        label = parse_label(text)
        return label.fingerprint if label is not None else None

    def overwrite_marker(self, url: str, value: str) -> None:
        """What a user (or another tool) could do by hand to a kept database's marker."""
        parsed = sa.make_url(url)
        if self.sqlite:
            with open((parsed.database or "") + MARKER_SUFFIX, "w", encoding="utf-8") as f:
                f.write(value)
            return
        with server_admin(url) as conn:
            name = conn.dialect.identifier_preparer.quote(parsed.database or "")
            if parsed.get_backend_name() == "postgresql":
                conn.exec_driver_sql(f"COMMENT ON DATABASE {name} IS '{value}'")
            else:
                conn.exec_driver_sql(f"ALTER DATABASE {name} COMMENT '{value}'")
        self.assertEqual(self.marker(url), value)

    def add_sentinel(self, url: str) -> None:
        """A table the migrations never make: a run that sees it used the kept database as it was."""
        with own_connection(url, begin=True) as conn:
            conn.exec_driver_sql(f"CREATE TABLE {SENTINEL} (id INTEGER PRIMARY KEY)")

    # -- what a child reported ---------------------------------------------------------------

    def assertRan(self, report: Report, **stats: int) -> None:
        """The child's suite passed, after provisioning exactly as ``stats`` says."""
        self.assertEqual(report.returncode, 0, report.output)
        self.assertEqual(report.stats, {**STATS_ZERO, **stats}, report.output)

    def assertMigrated(self, report: Report, tables: frozenset[str], versions: list[str]) -> None:
        """The child's test saw every table of the migrations, at their head."""
        self.assertLessEqual(tables, report.tables, report.output)
        self.assertEqual(report.seen["versions"], versions, report.output)
        self.assertEqual(report.seen["rows"], 0, "the test started with rows in its tables")


class _Templates(_Processes):
    """Migrating is paid once per fingerprint, across processes, through a saved template."""

    def test_build_leaves_a_template_that_a_later_process_clones(self) -> None:
        """Three processes on one database: migrate, migrate other migrations, clone the last."""
        url = self.database("tpl")
        keep = {provisioning.KEEP_TEMPLATES_ENV: "1"}
        first, changed, later = self.children(keep, keep, {provisioning.KEEP_TEMPLATES_ENV: "0"})

        built = first.run(url=url, alembic=V1)
        self.assertRan(built, build=1)
        self.assertMigrated(built, V1_TABLES, V1_HEADS)
        self.assertFalse(database_exists(url), "the test database outlived its process")
        old = self.the_template(url)  # left for the next run
        self.assertLessEqual(V1_TABLES, table_names(self.template_url(url, old)))

        # Another fingerprint for the same database: migrated again, the stale template dropped.
        rebuilt = changed.run(url=url, alembic=V2)
        self.assertRan(rebuilt, build=1)
        self.assertMigrated(rebuilt, V2_TABLES, V2_HEADS)
        new = self.the_template(url)
        self.assertNotEqual(new, old)
        template = self.template_url(url, new)
        self.assertLessEqual(V2_TABLES, table_names(template))
        with own_connection(template) as conn:
            self.assertEqual(
                sorted(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()), V2_HEADS
            )

        # Same fingerprint in a later process: cloned, not migrated (and reused by its second
        # class); the very schema the migrations built. With KEEP_TEMPLATES=0 it drops the template.
        cloned = later.run(url=url, alembic=V2, again=True)
        self.assertRan(cloned, clone=1, reuse=1)
        self.assertMigrated(cloned, V2_TABLES, V2_HEADS)
        self.assertEqual(
            cloned.seen["schema"], rebuilt.seen["schema"], "the clone differs from the migrated database"
        )
        self.assertEqual(self.templates(url), set(), "KEEP_TEMPLATES=0: the template outlived the process")
        self.assertFalse(database_exists(url), "the test database outlived its process")

    def checkout(self) -> str:
        """A copy of the library app's migrations (and the revision they share), removed after the test."""
        folder = tempfile.mkdtemp(prefix="tt_prov_checkout_")
        self.addCleanup(shutil.rmtree, folder, True)
        for name in ("migrations", "shared_versions"):
            shutil.copytree(os.path.join(library.HERE, name), os.path.join(folder, name))
        return folder

    def test_an_added_migration_runs_alone_on_a_copy_of_the_last_template(self) -> None:
        """One revision more than the last run: migrated on from its template, to what a build from base makes."""
        folder = self.checkout()
        ini = os.path.join(folder, "migrations", "alembic.ini")
        url, from_base = self.database("tpl_more"), self.database("tpl_base")
        keep = {provisioning.KEEP_TEMPLATES_ENV: "1", provisioning.VERBOSE_ENV: "1"}
        first, added, fresh = self.children(keep, keep, keep)

        built = first.run(url=url, alembic=ini)
        self.assertRan(built, build=1)
        old = self.the_template(url)
        shutil.copy(
            os.path.join(V2, "versions", "0003_loans.py"), os.path.join(folder, "migrations", "versions")
        )

        more = added.run(url=url, alembic=ini)
        self.assertRan(more, build=1)
        self.assertMigrated(more, V2_TABLES, V2_HEADS)
        self.assertRegex(more.output, rf"migrated to head 0003_loans from template {old} in ")
        new = self.the_template(url)  # the earlier one dropped as stale
        self.assertNotEqual(new, old)
        with own_connection(self.template_url(url, new)) as conn:
            self.assertEqual(
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all(), V2_HEADS
            )

        base = fresh.run(url=from_base, alembic=ini)
        self.assertRan(base, build=1)
        self.assertNotIn("from template", base.output)
        self.assertEqual(
            more.seen["schema"], base.seen["schema"], "migrating on differs from a build from base"
        )

    def test_an_edited_migration_is_built_from_base(self) -> None:
        """A revision the last template was built with changed (or env.py did): no earlier template fits."""
        for purpose, edited in (
            ("tpl_edit_rev", ("migrations", "versions", "0002_books.py")),
            ("tpl_edit_env", ("migrations", "env.py")),
        ):
            with self.subTest(edited=edited[-1]):
                folder = self.checkout()
                ini = os.path.join(folder, "migrations", "alembic.ini")
                url = self.database(purpose)
                keep = {provisioning.KEEP_TEMPLATES_ENV: "1", provisioning.VERBOSE_ENV: "1"}
                first, changed = self.children(keep, keep)
                self.assertRan(first.run(url=url, alembic=ini), build=1)
                old = self.the_template(url)
                shutil.copy(
                    os.path.join(V2, "versions", "0003_loans.py"),
                    os.path.join(folder, "migrations", "versions"),
                )
                with open(os.path.join(folder, *edited), "a", encoding="utf-8") as f:
                    f.write("\n# edited after the template was made\n")
                rebuilt = changed.run(url=url, alembic=ini)
                self.assertRan(rebuilt, build=1)
                self.assertMigrated(rebuilt, V2_TABLES, V2_HEADS)
                self.assertNotIn("from template", rebuilt.output)
                self.assertNotIn(old, self.templates(url))

    def test_a_complete_template_is_cloned_without_waiting_for_its_lock(self) -> None:
        """Workers clone at the same time: the lock is for building, and for nothing else.

        While this process holds the template's lock (as a worker still
        building another database would), a process whose template exists
        clones it at once.
        """
        url = self.database("tpl_lock")
        keep = {provisioning.KEEP_TEMPLATES_ENV: "1"}
        first, second = self.children(keep, keep)
        self.assertRan(first.run(url=url, alembic=V1), build=1)
        self.the_template(url)
        parsed = sa.make_url(url)
        backend = backend_for(parsed)
        name = provisioning._lock_name(parsed, None)
        with (
            mock.patch.dict(os.environ, {"TRANSACTIONAL_TESTCASE_CACHE": self.cache}),
            backend.lock(parsed, name),
        ):
            second.start(url=url, alembic=V1)
            try:
                second.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                waited = True
            else:
                waited = False
        cloned = second.finish()
        self.assertFalse(waited, "the clone waited for the template lock:\n" + cloned.output)
        self.assertRan(cloned, clone=1)
        self.assertMigrated(cloned, V1_TABLES, V1_HEADS)


class _KeptDatabases(_Processes):
    """``keepdb``: the database outlives the run and is used as it is while its fingerprint matches."""

    def test_kept_from_run_to_run_while_the_fingerprint_matches(self) -> None:
        """One kept database through five runs, keepdb from the environment or the class attribute.

        Kept and used as it is (a table added by hand is still there); rebuilt
        when its marker was overwritten by hand or the migrations changed;
        and what a test committed for real is not in it afterwards.
        """
        url = self.database("keep")
        env = {provisioning.KEEPDB_ENV: "1"}
        first, second, overwritten, changed, escaping = self.children(env, {}, {}, env, env)

        built = first.run(url=url, alembic=V1)
        self.assertRan(built, build=1)
        self.assertMigrated(built, V1_TABLES, V1_HEADS)
        self.assertTrue(
            database_exists(url), "TRANSACTIONAL_TESTCASE_KEEPDB=1: the database was dropped at exit"
        )
        fingerprint = self.marker(url)
        self.assertRegex(fingerprint or "", r"^[0-9a-f]{64}$")
        self.assertEqual(self.templates(url), set(), "KEEP_TEMPLATES=0 drops templates, keepdb or not")
        self.add_sentinel(url)

        kept = second.run(url=url, alembic=V1, keepdb=True)
        self.assertRan(kept, keep=1)
        self.assertMigrated(kept, V1_TABLES, V1_HEADS)
        self.assertIn(SENTINEL, kept.tables, "keepdb = True: the kept database was not used as it was")
        self.assertTrue(database_exists(url), "keepdb = True: the database was dropped at exit")
        self.assertEqual(self.marker(url), fingerprint)

        # The marker overwritten by hand: rebuilt (no template is left to clone), never used.
        self.overwrite_marker(url, hashlib.sha256(b"another schema").hexdigest())
        rebuilt = overwritten.run(url=url, alembic=V1, keepdb=True)
        self.assertRan(rebuilt, build=1)
        self.assertMigrated(rebuilt, V1_TABLES, V1_HEADS)
        self.assertNotIn(SENTINEL, rebuilt.tables, "a database whose marker did not match was used")
        self.assertEqual(self.marker(url), fingerprint)
        self.assertTrue(database_exists(url))
        self.add_sentinel(url)

        # Other migrations: rebuilt, never used.
        migrated = changed.run(url=url, alembic=V2)
        self.assertRan(migrated, build=1)
        self.assertMigrated(migrated, V2_TABLES, V2_HEADS)
        self.assertNotIn(SENTINEL, migrated.tables, "a database kept for older migrations was used")
        self.assertNotIn(self.marker(url), (None, fingerprint))
        self.assertTrue(database_exists(url))

        # A test that commits rows for real in the kept database: they are not left in it.
        escaped = escaping.run(url=url, alembic=V2, mode="escape_rows")
        self.assertEqual(escaped.returncode, 1, escaped.output)
        self.assertIn("IsolationError", escaped.output)
        self.assertEqual(escaped.stats, {**STATS_ZERO, "keep": 1}, escaped.output)
        self.assertTrue(database_exists(url))
        self.assertEqual(leftover_rows(url), {}, "the escaped commit is still in the kept database")

    def test_schema_committed_by_an_escape_is_not_kept(self) -> None:
        """DDL a test committed for real changed the kept database: the next run must rebuild it.

        PostgreSQL and SQLite: ``CREATE TABLE`` then ``Connection.commit()`` of
        the test's transaction; MariaDB: the ``CREATE TABLE`` commits implicitly.
        """
        url = self.database("ddl")
        escaping, after = self.children({}, {})

        escaped = escaping.run(url=url, alembic=V1, keepdb=True, mode="escape_schema")
        self.assertEqual(escaped.returncode, 1, escaped.output)
        self.assertIn("IsolationError", escaped.output)
        self.assertEqual(escaped.stats, {**STATS_ZERO, "build": 1}, escaped.output)
        self.assertIn("prov_escaped", table_names(url), "the escape did not commit: nothing to check")

        clean = after.run(url=url, alembic=V1, keepdb=True)
        self.assertEqual(clean.returncode, 0, clean.output)
        self.assertNotIn(
            "prov_escaped", clean.tables, "a kept database the escape changed was used as it was"
        )
        self.assertEqual(clean.stats["keep"], 0, f"the marker survived the escape: {clean.stats}")
        self.assertMigrated(clean, V1_TABLES, V1_HEADS)


class _Concurrency(_Processes):
    """Parallel workers: one build per template, one database per worker."""

    #: Worker name per child, and the variable that names it.
    WORKERS: t.ClassVar[dict[str, str]] = {
        "w1": provisioning.WORKER_ENV,
        "gw3": "PYTEST_XDIST_WORKER",
        "w2": provisioning.WORKER_ENV,
    }

    def test_workers_started_together_build_once_and_keep_to_their_own_databases(self) -> None:
        """Three workers start at once on a missing template: one migrates, the others clone.

        Whoever builds holds the template lock until every worker has started
        provisioning (and half a second more): without the lock all of them
        would migrate. Then all three stay inside their test at once, each in
        a database named with its suffix; each drops its own at exit.
        """
        workers = list(self.WORKERS)
        url = self.database("workers", *workers)
        children = dict(
            zip(workers, self.children(*({var: w} for w, var in self.WORKERS.items())), strict=False)
        )
        started = {w: os.path.join(self.cache, f"started_{w}") for w in workers}
        inside = {w: os.path.join(self.cache, f"inside_{w}") for w in workers}
        release = os.path.join(self.cache, "release")
        self.addCleanup(touch, release)  # whatever fails here, the held workers go on and end
        for worker, child in children.items():
            child.start(
                url=url,
                alembic=V1,
                started=started[worker],
                everyone=list(started.values()),
                mode="hold",
                inside=inside[worker],
                release=release,
            )
        for worker, child in children.items():
            wait_for_file(child, inside[worker])

        # All inside a test now: each in a database of its own, the unsuffixed one unused.
        urls = {w: worker_database(url, w) for w in workers}
        for worker, worker_url in urls.items():
            self.assertTrue(database_exists(worker_url), f"no database {worker_url} while {worker} runs")
        self.assertFalse(database_exists(url), "a worker used the database without its suffix")
        self.the_template(url)  # one for all: its owner is named without the suffix
        touch(release)
        reports = {w: child.finish() for w, child in children.items()}

        for worker, report in reports.items():
            self.assertEqual(report.returncode, 0, report.output)
            self.assertEqual(report.seen["database"], database_name(urls[worker]))
            self.assertMigrated(report, V1_TABLES, V1_HEADS)
        builders = [r for r in reports.values() if r.stats["build"]]
        self.assertEqual(len(builders), 1, {w: r.stats for w, r in reports.items()})
        self.assertTrue(builders[0].seen["everyone_started"], "the workers never overlapped: no race")
        self.assertEqual(
            sorted(r.stats["clone"] for r in reports.values()),
            [0] + [1] * (len(workers) - 1),
            {w: r.stats for w, r in reports.items()},
        )
        self.assertEqual(
            len({json.dumps(r.seen["schema"]) for r in reports.values()}), 1, "the clones differ"
        )
        for worker, worker_url in urls.items():
            self.assertFalse(database_exists(worker_url), f"{worker} did not drop its database at exit")
        self.assertEqual(self.templates(url), set(), "KEEP_TEMPLATES=0: the template outlived the workers")


class _OtherDrivers(_Processes):
    """Build and keep through this driver: the app's own engine reads the kept database's marker.

    Cloning runs the same statements through the same driver as saving the
    template, which the build does.
    """

    def test_build_then_keep(self) -> None:
        """The first run migrates and leaves the database; the second finds its marker and keeps it."""
        url = self.database("driver")
        first, second = self.children({provisioning.KEEPDB_ENV: "1"}, {})
        built = first.run(url=url, alembic=V1)
        self.assertRan(built, build=1)
        self.assertMigrated(built, V1_TABLES, V1_HEADS)
        self.assertTrue(database_exists(url))
        self.assertEqual(self.templates(url), set())
        self.add_sentinel(url)

        kept = second.run(url=url, alembic=V1, keepdb=True)
        self.assertRan(kept, keep=1)
        self.assertIn(SENTINEL, kept.tables)
        self.assertMigrated(kept, V1_TABLES, V1_HEADS)
        self.assertTrue(database_exists(url))


class _Adoption(_Processes):
    """PostgreSQL: the database a run built becomes its template at exit, renamed, if nothing was committed.

    One rename replaces copying the database right after its build and
    dropping it at exit; the next run clones it as it would a copy.
    """

    def test_the_built_database_is_renamed_to_its_template_at_exit(self) -> None:
        url = self.database("adopt")
        keep = {provisioning.KEEP_TEMPLATES_ENV: "1", provisioning.VERBOSE_ENV: "1"}
        first, later = self.children(keep, keep)
        inside, release = (os.path.join(self.cache, n) for n in ("inside", "release"))
        self.addCleanup(touch, release)
        first.start(url=url, alembic=V1, mode="hold", inside=inside, release=release)
        wait_for_file(first, inside)
        self.assertTrue(database_exists(url))
        self.assertEqual(self.templates(url), set(), "the template was copied during the run")
        touch(release)
        built = first.finish()
        self.assertRan(built, build=1)
        self.assertFalse(database_exists(url), "the test database outlived its process")
        template = self.template_url(url, self.the_template(url))
        self.assertIn("renamed to template", built.output)
        with server_admin(url) as conn:
            comment = conn.execute(
                sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
                {"n": sa.make_url(template).database},
            ).scalar()
        self.assertIsNotNone(parse_label(comment), "the renamed template has no label")

        cloned = later.run(url=url, alembic=V1)
        self.assertRan(cloned, clone=1)
        self.assertMigrated(cloned, V1_TABLES, V1_HEADS)
        self.assertEqual(cloned.seen["schema"], built.seen["schema"])
        self.assertEqual(
            cloned.seen["first_id"],
            built.seen["first_id"],
            "the first run's rolled-back insert moved the counter",
        )

    def test_a_database_something_was_committed_into_is_dropped_not_renamed(self) -> None:
        """Dropped, and recorded: the next build copies its template at once, the run after clones."""
        for mode in ("escape_rows", "escape_schema"):
            with self.subTest(mode=mode):
                url = self.database(f"adopt_{mode[7:]}")
                first, later, third = self.children(
                    *[{provisioning.KEEP_TEMPLATES_ENV: "1", provisioning.VERBOSE_ENV: "1"}] * 3
                )
                escaped = first.run(url=url, alembic=V1, mode=mode)
                self.assertEqual(escaped.stats["build"], 1, escaped.output)
                self.assertRegex(
                    escaped.output,
                    r"not renamed to template tt_tpl_\w+: (.+ changed|tables were created or dropped); "
                    r"the next build copies its template at once$",
                )
                self.assertFalse(database_exists(url), "the test database outlived its process")
                self.assertEqual(
                    self.templates(url), set(), "a database with a committed change became a template"
                )
                # The same commit again: the build copied the template before the tests ran.
                again = later.run(url=url, alembic=V1, mode=mode)
                self.assertEqual(again.stats["build"], 1, again.output)
                self.assertIn("saved as template", again.output)
                self.assertNotIn("to be renamed", again.output)
                self.assertEqual(len(self.templates(url)), 1, again.output)
                rebuilt = third.run(url=url, alembic=V1)
                self.assertRan(rebuilt, clone=1)
                self.assertNotIn("prov_escaped", rebuilt.tables)
                self.assertEqual(rebuilt.seen["rows"], 0)

    def test_a_committing_class_gets_a_clone_of_the_template(self) -> None:
        """Its commits would keep the database from its rename: the template is made before it runs."""
        url = self.database("adopt_commit")
        keep = {provisioning.KEEP_TEMPLATES_ENV: "1", provisioning.VERBOSE_ENV: "1"}
        first, later = self.children(keep, keep)
        built = first.run(url=url, alembic=V1, committing=True)
        self.assertRan(built, build=1, clone=1)
        self.assertEqual(built.seen["committed"], 1, built.output)
        self.assertRegex(built.output, r"renamed to template tt_tpl_\w+_test\n")
        template = self.template_url(url, self.the_template(url))
        self.assertEqual(leftover_rows(template), {}, "the committed row reached the template")
        self.assertFalse(database_exists(url))
        cloned = later.run(url=url, alembic=V1)
        self.assertRan(cloned, clone=1)
        self.assertEqual(cloned.seen["rows"], 0)

    def test_tables_that_grew_by_rolled_back_rows_are_compacted_first(self) -> None:
        url = self.database("adopt_bloat")
        (first,) = self.children({provisioning.KEEP_TEMPLATES_ENV: "1"})
        built = first.run(url=url, alembic=V1, mode="bloat", rows=20000)
        self.assertRan(built, build=1)
        seen = built.seen
        self.assertGreater(
            seen["bloated_size"] - seen["empty_size"], provisioning_growth(), "nothing to compact"
        )
        with own_connection(self.template_url(url, self.the_template(url))) as conn:
            size = conn.exec_driver_sql("SELECT pg_total_relation_size('authors')").scalar()
        self.assertLessEqual(size, seen["empty_size"], "the template kept the rolled-back rows' pages")

    def test_parallel_workers_copy_the_template_at_once(self) -> None:
        """The other workers clone it while the builder still runs its tests: no waiting for an exit."""
        url = self.database("adopt_worker", "w1")
        (worker,) = self.children({provisioning.WORKER_ENV: "w1", provisioning.KEEP_TEMPLATES_ENV: "1"})
        inside, release = (os.path.join(self.cache, n) for n in ("inside", "release"))
        self.addCleanup(touch, release)
        worker.start(url=url, alembic=V1, mode="hold", inside=inside, release=release)
        wait_for_file(worker, inside)
        self.the_template(url)
        touch(release)
        self.assertRan(worker.finish(), build=1)
        self.assertFalse(database_exists(worker_database(url, "w1")))


class _AdoptionChecks(_Outer):
    """What keeps a PostgreSQL database from becoming its template: any change committed since its snapshot."""

    backend: t.ClassVar[BackendUnderTest]

    SETUP = (
        "CREATE TABLE prov_items (id SERIAL PRIMARY KEY, name TEXT)",
        "INSERT INTO prov_items (name) VALUES ('seeded')",  # as a data migration would
    )
    #: A change committed after the snapshot, and what the refusal names.
    CHANGES: t.ClassVar[dict[str, tuple[str, str]]] = {
        "insert": ("INSERT INTO prov_items (name) VALUES ('new')", "prov_items changed"),
        "update": ("UPDATE prov_items SET name = 'other'", "prov_items changed"),
        "delete": ("DELETE FROM prov_items", "prov_items changed"),
        "comment": ("COMMENT ON TABLE prov_items IS 'x'", "pg_description changed"),
        "column": ("ALTER TABLE prov_items ADD COLUMN extra INTEGER", "changed"),
        "table": ("CREATE TABLE prov_more (id INTEGER)", "tables were created or dropped"),
        "setting": ("ALTER DATABASE {db} SET work_mem = '8MB'", "the database's own settings changed"),
    }

    def test_only_an_unchanged_database_is_renamed(self) -> None:
        backend = backend_for(sa.make_url(bind_url(self.backend, "prov_adopt_check")))
        for change, (statement, why) in self.CHANGES.items():
            with self.subTest(change=change):
                url, template = self.built(f"prov_adopt_{change}")
                snapshot = self.snapshot(url)
                with own_connection(url, begin=True) as conn:
                    conn.exec_driver_sql(
                        statement.format(db=conn.dialect.identifier_preparer.quote(url.database))
                    )
                found = backend.rename_to_template(url, template, snapshot, "")
                self.assertIsNotNone(found, f"renamed after a committed {change}")
                self.assertIn(why, found or "")
                self.assertTrue(database_exists(url.render_as_string(hide_password=False)))

    def test_rolled_back_writes_and_counters_are_no_change(self) -> None:
        backend = backend_for(sa.make_url(bind_url(self.backend, "prov_adopt_check")))
        url, template = self.built("prov_adopt_clean")
        snapshot = self.snapshot(url)
        with own_connection(url) as conn:
            conn.exec_driver_sql("INSERT INTO prov_items (name) VALUES ('rolled back')")
            conn.exec_driver_sql("CREATE TABLE prov_rolled_back (id INTEGER)")
            conn.rollback()
        self.assertIsNone(backend.rename_to_template(url, template, snapshot, "the label"))
        self.assertFalse(database_exists(url.render_as_string(hide_password=False)))
        with own_connection(template.render_as_string(hide_password=False)) as conn:
            # The counter is where the build left it: the next insert gets 2, as in a copy.
            self.assertEqual(conn.exec_driver_sql("SELECT nextval('prov_items_id_seq')").scalar(), 2)
            self.assertEqual(conn.exec_driver_sql("SELECT name FROM prov_items").scalars().all(), ["seeded"])

    def test_a_database_without_tables_of_its_own_is_renamed(self) -> None:
        url = sa.make_url(bind_url(self.backend, "prov_adopt_bare"))
        template = url.set(database=f"{url.database}_tpl")
        for each in (url, template):
            self.addCleanup(drop_database, each, force=True)
        backend = backend_for(url)
        backend.recreate(url)
        self.assertIsNone(backend.rename_to_template(url, template, self.snapshot(url), ""))
        self.assertTrue(database_exists(template))

    def test_a_connection_left_open_does_not_stop_the_rename(self) -> None:
        """As ``DROP ... WITH (FORCE)`` would, the rename ends it (an engine nobody disposed)."""
        backend = backend_for(sa.make_url(bind_url(self.backend, "prov_adopt_check")))
        url, template = self.built("prov_adopt_open")
        snapshot = self.snapshot(url)
        engine = sa.create_engine(url)
        self.addCleanup(engine.dispose)
        left_open = engine.connect()
        left_open.exec_driver_sql("SELECT 1")
        # Left connected, the server refuses the rename (after waiting 5 s for it to go).
        self.assertIsNone(backend.rename_to_template(url, template, snapshot, ""))
        self.assertTrue(database_exists(template))
        with self.assertRaises(sa.exc.DBAPIError):
            left_open.exec_driver_sql("SELECT 1")

    def built(self, name: str) -> tuple[sa.URL, sa.URL]:
        """A database ``name`` as a build leaves it, and its template's URL; both dropped after."""
        url = sa.make_url(bind_url(self.backend, name))
        template = url.set(database=f"{url.database}_tpl")
        for each in (url, template):
            self.addCleanup(drop_database, each.render_as_string(hide_password=False), force=True)
        backend_for(url).recreate(url)
        with own_connection(url.render_as_string(hide_password=False), begin=True) as conn:
            for statement in self.SETUP:
                conn.exec_driver_sql(statement)
        return url, template

    def snapshot(self, url: sa.URL) -> t.Any:
        engine = sa.create_engine(url)
        try:
            snapshot = backend_for(url).snapshot(engine)
        finally:
            engine.dispose()
        self.assertIsNotNone(snapshot)
        return snapshot


generate_per_backend(_AdoptionChecks, OuterCase, backends=backends_named("psycopg2"), name="AdoptionChecks")


def provisioning_growth() -> int:
    """How much a database may grow before it is compacted (bytes): see the PostgreSQL backend."""
    from transactional_testcase.backends import postgresql

    return postgresql._RENAME_GROWTH


def wait_for_file(child: Child, path: str) -> None:
    """Wait until the child has written ``path`` (reached a point of its test)."""
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        if child.proc.poll() is not None:
            raise AssertionError(f"the child ended before reaching its test:\n{child.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the child never reached its test:\n{child.output()}")
        time.sleep(0.02)


for _mixin, _names in (
    (_Adoption, ("psycopg2",)),  # what it runs is the same SQL on either driver
    (_Templates, MAIN),
    (_KeptDatabases, MAIN),
    (_Concurrency, MAIN),
    (_OtherDrivers, OTHER),
):
    generate_per_backend(_mixin, OuterCase, backends=backends_named(*_names), name=_mixin.__name__[1:])


class _CloneRace(_Outer):
    """A template that goes away while it is cloned without the lock: cloned again under the lock."""

    backend: t.ClassVar[BackendUnderTest]

    def test_a_failed_unlocked_clone_is_tried_again_under_the_lock(self) -> None:
        from tests.test_lifecycle import inner, run_case

        case = inner(self.backend, "prov_race", test_nothing=lambda self: None)
        self.assertTrue(run_case(case).wasSuccessful())  # builds; the template stays
        urls = [sa.make_url(u) for u in case.engine_urls.values()]  # type: ignore[attr-defined]
        provisioning.provisioner.invalidate(urls)  # the next class must clone
        backend_class = type(backend_for(urls[0]))
        original = backend_class.clone
        calls: list[bool] = []

        def clone(self: t.Any, template: sa.URL, url: sa.URL, engine: sa.Engine) -> None:
            calls.append(True)
            if len(calls) == 1:
                raise sa.exc.OperationalError("clone", {}, RuntimeError("the template went away"))
            original(self, template, url, engine)

        before = dict(provisioning.provisioner.stats)
        with mock.patch.object(backend_class, "clone", clone):
            result = run_case(inner(self.backend, "prov_race", test_nothing=lambda self: None))
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(provisioning.provisioner.stats["clone"], before["clone"] + 1)
        self.assertEqual(provisioning.provisioner.stats["build"], before["build"])
        self.assertEqual(len(calls), 3, "default and audit: one failed unlocked, then both under the lock")


generate_per_backend(_CloneRace, OuterCase, backends=backends_named(*MAIN), name="CloneRace")


class _AdminSessions(_Outer):
    """The steps of one provisioning share one admin connection per server (a login, a TLS handshake each)."""

    backend: t.ClassVar[BackendUnderTest]

    def test_one_admin_connection_serves_every_step_and_is_closed_after(self) -> None:
        url = sa.make_url(bind_url(self.backend, "prov_admin"))
        self.addCleanup(drop_database, url, force=True)
        backend = backend_for(url)
        template = backend.template_url(url, "tt_tpl_prov_admin_none_test")
        opened: list[sa.Connection] = []
        original = Backend._connect_admin

        def counting(backend_self: Backend, *args: t.Any, **kwargs: t.Any) -> sa.Connection:
            conn = original(backend_self, *args, **kwargs)
            opened.append(conn)
            return conn

        with mock.patch.object(Backend, "_connect_admin", counting):
            with admin_session():
                with backend.lock(url, "tt_prov_admin_lock"):
                    backend.recreate(url)
                    self.assertFalse(backend.has_template(template, url))
                    # A failed statement leaves the shared connection usable.
                    with self.assertRaises(sa.exc.DBAPIError), backend.admin_connection(url) as conn:
                        conn.exec_driver_sql("SELECT no_such_column FROM no_such_table")
                    self.assertTrue(database_exists(url))
                backend.drop(url)
                self.assertFalse(database_exists(url))
            self.assertEqual(len(opened), 1)
            self.assertTrue(opened[0].closed)
            backend.drop(url)  # outside a session: a connection of its own, closed at once
            self.assertEqual(len(opened), 2)
            self.assertTrue(opened[1].closed)


generate_per_backend(
    _AdminSessions, OuterCase, backends=backends_named(*MAIN[1:], *OTHER), name="AdminSessions"
)


# -- fingerprints and names, without a database -------------------------------------------------


class TemplateOwners(unittest.TestCase):
    """Which databases' templates are one another's: the same database of the same server, bind and worker."""

    def prefix(self, url: str, key: str | None = None) -> str:
        return provisioning._template_prefix(sa.make_url(url), key)

    def test_sqlite_files_of_the_same_name_in_two_folders_are_two_owners(self) -> None:
        self.assertNotEqual(
            self.prefix("sqlite:////srv/one/test.db"), self.prefix("sqlite:////srv/two/test.db")
        )
        self.assertEqual(
            self.prefix("sqlite:////srv/one/test.db"), self.prefix("sqlite:////srv/one/test.sqlite")
        )

    def test_the_per_process_folder_does_not_count(self) -> None:
        # Every run gets a new temporary folder: templates must outlive it.
        tmp = tempfile.gettempdir()
        name = provisioning.project_database_name() + ".db"
        first = self.prefix("sqlite:///" + os.path.join(tmp, "transactional_testcase-abc123", name))
        second = self.prefix("sqlite:///" + os.path.join(tmp, "transactional_testcase-xyz789", name))
        self.assertEqual(first, second)
        default = provisioning.provisioner.default_sqlite_url()
        self.assertEqual(self.prefix(default), first)
        kept = provisioning.provisioner.default_sqlite_url(keepdb=True)
        self.assertEqual(os.path.basename(sa.make_url(kept).database or ""), name)

    def test_bind_and_server_database_count(self) -> None:
        url = "postgresql://postgres@127.0.0.1/app_test"
        self.assertNotEqual(self.prefix(url), self.prefix(url, "audit"))
        self.assertNotEqual(self.prefix(url), self.prefix("postgresql://postgres@127.0.0.1/other_test"))
        self.assertNotEqual(self.prefix(url), self.prefix("postgresql://postgres@10.0.0.2/app_test"))


class Fingerprints(unittest.TestCase):
    """What decides between reusing and rebuilding: file contents, models, worker names."""

    def fingerprint(self, ini: str) -> str:
        with quiet_alembic():
            return AlembicSchema(AlembicProject.from_ini(ini)).fingerprint()

    def test_alembic_fingerprint_follows_contents_not_paths_or_times(self) -> None:
        """A fresh checkout elsewhere is the same schema; an edited or added revision is not."""
        folder = tempfile.mkdtemp(prefix="tt_prov_checkout_")
        self.addCleanup(shutil.rmtree, folder, True)
        for name in ("migrations", "shared_versions"):
            shutil.copytree(os.path.join(library.HERE, name), os.path.join(folder, name))
        original = self.fingerprint(os.path.join(V1, "alembic.ini"))
        ini = os.path.join(folder, "migrations", "alembic.ini")
        self.assertEqual(self.fingerprint(ini), original, "another folder, same files: another fingerprint")
        revision = os.path.join(folder, "migrations", "versions", "0002_books.py")
        os.utime(revision, (1, 1))
        self.assertEqual(self.fingerprint(ini), original, "a modification time changed the fingerprint")

        with open(revision, "a", encoding="utf-8") as f:
            f.write("# edited\n")
        edited = self.fingerprint(ini)
        self.assertNotEqual(edited, original)
        with open(os.path.join(folder, "shared_versions", "0003_more.py"), "w", encoding="utf-8") as f:
            f.write('revision = "0003_more"\ndown_revision = "0002_books"\n')
        self.assertNotIn(self.fingerprint(ini), (original, edited))
        self.assertNotEqual(self.fingerprint(os.path.join(V2, "alembic.ini")), original)

    def test_create_all_fingerprint_follows_the_models(self) -> None:
        def models(*columns: str) -> str:
            db = SQLAlchemy()
            sa.Table(
                "items",
                db.metadata,
                sa.Column("id", sa.Integer, primary_key=True),
                *(sa.Column(c, sa.String(20)) for c in columns),
            )
            return CreateAllSchema(FlaskSQLAlchemy(db, Flask(__name__)), "Case").fingerprint()

        self.assertEqual(models("name"), models("name"))
        self.assertNotEqual(models("name"), models("name", "colour"))

    def test_worker_names(self) -> None:
        """The explicit variable wins over pytest-xdist's; SQLite's suffix goes before the extension."""
        cases = [
            ({provisioning.WORKER_ENV: "w1"}, "postgresql://h/app_test", "app_test_w1"),
            ({"PYTEST_XDIST_WORKER": "gw3"}, "mysql+pymysql://h/app_test", "app_test_gw3"),
            (
                {provisioning.WORKER_ENV: "w1", "PYTEST_XDIST_WORKER": "gw3"},
                "postgresql://h/app_test",
                "app_test_w1",
            ),
            ({provisioning.WORKER_ENV: "w-1.a"}, "postgresql://h/app_test", "app_test_w_1_a"),
            ({"PYTEST_XDIST_WORKER": "gw3"}, "sqlite:////tmp/x/app_test.db", "/tmp/x/app_test_gw3.db"),
            ({"PYTEST_XDIST_WORKER": "gw3"}, "sqlite://", None),
            ({}, "postgresql://h/app_test", "app_test"),
        ]
        for env, url, expected in cases:
            with self.subTest(env=env, url=url), mock.patch.dict(os.environ, env):
                for name in {"PYTEST_XDIST_WORKER", provisioning.WORKER_ENV} - set(env):
                    os.environ.pop(name, None)
                self.assertEqual(provisioning.worker_url(url).database, expected)

    def test_a_bind_given_as_engine_options_gets_the_workers_name(self) -> None:
        """``binds`` values may be engine options: their URL is handled as a plain one, the options kept."""
        from transactional_testcase import MigrationsTestCase, TransactionalTestCase

        options = {"url": "postgresql+psycopg2://h/audit_test", "pool_size": 3}

        class Case(TransactionalTestCase):
            database_url = "postgresql+psycopg2://h/app_test"
            binds = {"audit": options}

        class Checks(MigrationsTestCase):
            database_url = "postgresql+psycopg2://h/app_test"
            binds = {"audit": options}

        with mock.patch.dict(os.environ, {provisioning.WORKER_ENV: "w1"}):
            config, checks = Case.get_app_config(), Checks.get_app_config()
        for got, name in ((config, "audit_test_w1"), (checks, "audit_test_w1_migrations")):
            for value in (got["SQLALCHEMY_BINDS"]["audit"], got["SQLALCHEMY_ENGINES"]["audit"]):
                self.assertEqual(value["pool_size"], 3)
                self.assertEqual(sa.make_url(value["url"]).database, name)


if __name__ == "__main__":
    unittest.main()
