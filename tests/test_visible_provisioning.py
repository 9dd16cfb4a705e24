"""Provisioning you can see: its log lines, its template names, and the command that lists and drops.

Each test runs one-class suites of the ``plain_alembic`` app (plain Alembic,
no Flask-Migrate: nothing imports Alembic but the library) in child processes,
one after the other, and reads what each printed: its stderr (the log lines,
with ``TRANSACTIONAL_TESTCASE_VERBOSE=1``; no Alembic line even though the
factory sets the root logger to INFO) and a report on stdout (how it
provisioned, which Alembic modules it imported).

What is covered, on SQLite, psycopg2 and PyMySQL (MariaDB):

* ``Lines``: built (to which head, how long), cloned (from which template),
  kept, rebuilt because the fingerprint changed, each said once per database;
  a password never shown;
* ``NoAlembic``: a run that clones, and one that reuses a kept database,
  never imports Alembic; a run that migrates prints no Alembic INFO line;
* ``Coexisting``: a class with migrations and one with ``create_all()`` on
  the same database keep a template each (the second round clones both);
* ``Command``: ``list`` shows this test's template and kept database with
  their source, ``drop`` says what it would drop, drops only with ``--yes``,
  and never a database the library did not make.

``DefaultSQLite`` checks that the default SQLite file (and so its templates
and its keepdb file) belongs to the project: two projects in turn clone and
keep, rather than rebuild. ``Names`` checks template names without a database.

Every database here is ``<main>_vis_<purpose>`` (SQLite ``..._vis_<purpose>.db``);
each test drops what it made, templates included, and only that; SQLite
templates go to a temporary ``TRANSACTIONAL_TESTCASE_CACHE`` of each test.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import typing as t
import unittest
import warnings

import sqlalchemy as sa

from tests.admin import database_exists, drop_database, server_databases
from tests.apps import plain_alembic
from tests.matrix import BackendUnderTest, OuterCase, backends_named, bind_url, generate_per_backend
from transactional_testcase import command, environment, provisioning
from transactional_testcase.alembic_runner import AlembicProject
from transactional_testcase.backends import MARKER_SUFFIX, TEMPLATE_NAME, Leftover
from transactional_testcase.schema import AlembicSchema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Generous bound for a child process: only a hang reaches it.
TIMEOUT = 120.0
#: Environment variables of the parent that must not leak into a child.
CHILD_UNSET = (
    "PYTEST_XDIST_WORKER",
    environment.WORKER,
    environment.KEEPDB,
    environment.KEEP_TEMPLATES,
    environment.CACHE,
    environment.VERBOSE,
    environment.DATABASE_URL,
)
#: How a line the library prints starts, and one of its INFO lines as basicConfig shows it.
PRINTED, LOGGED = "transactional_testcase: ", "INFO:transactional_testcase:"
#: A line Alembic logs (``INFO:alembic.runtime.migration:...`` with basicConfig's format).
ALEMBIC_LINE = re.compile(r"^\w+:alembic", re.MULTILINE)

_CHILD = textwrap.dedent(
    """
    import json
    import logging
    import sys
    import unittest

    from tests.apps import plain_alembic
    from transactional_testcase import TransactionalTestCase
    from transactional_testcase.provisioning import provisioner

    job = json.loads(sys.argv[1])


    class Case(TransactionalTestCase):
        alembic_config = plain_alembic.ALEMBIC_INI if job.get("alembic", True) else False
        keepdb = job.get("keepdb", False)

        @classmethod
        def create_app(cls, config):
            # As many apps do: every INFO line of every logger reaches stderr.
            logging.basicConfig(level=logging.INFO)
            return plain_alembic.create_app(config)

        def test_provisioned(self):
            self.assertEqual(plain_alembic.count(plain_alembic.Widget), 0)


    if job.get("url"):
        Case.database_url = job["url"]
    suite = unittest.TestLoader().loadTestsFromTestCase(Case)
    result = unittest.TextTestRunner(stream=sys.stdout).run(suite)
    imported = sorted(m for m in sys.modules if m == "alembic" or m.startswith("alembic."))
    report = {"ok": result.wasSuccessful(), "stats": provisioner.stats, "alembic": imported}
    print("REPORT " + json.dumps(report), flush=True)
    """
)


class Report(t.NamedTuple):
    stats: dict[str, int]
    #: The Alembic modules the child had imported when its suite ended.
    alembic: list[str]
    stderr: str
    output: str

    @property
    def how(self) -> str:
        """The one way it provisioned (``build``, ``clone``, ``keep``, ``reuse``)."""
        done = [how for how, n in self.stats.items() if n]
        assert len(done) == 1, self.output
        return done[0]

    @property
    def lines(self) -> list[str]:
        """What provisioning said of the databases on stderr, as ``transactional_testcase: Test database ...``.

        Printed with ``TRANSACTIONAL_TESTCASE_VERBOSE=1``, unless logging shows
        it already (the child's ``basicConfig``: ``INFO:transactional_testcase:``).
        """
        said = []
        for ln in self.stderr.splitlines():
            for prefix in (PRINTED, LOGGED):
                if ln.startswith(prefix + "Test database "):
                    said.append(PRINTED + ln[len(prefix) :])
        return said

    @property
    def printed(self) -> list[str]:
        """The lines the library printed itself (not through logging)."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith(PRINTED)]


if t.TYPE_CHECKING:
    _Outer = OuterCase
else:
    _Outer = object


class _Children(_Outer):
    """Child runs one after the other, and cleaning up what they leave (ours only)."""

    backend: t.ClassVar[BackendUnderTest]

    def setUp(self) -> None:
        super().setUp()
        self.cache = tempfile.mkdtemp(prefix="pv_vis_cache_")
        self.addCleanup(shutil.rmtree, self.cache, True)

    @property
    def sqlite(self) -> bool:
        return self.backend.name == "sqlite"

    def database(self, purpose: str) -> str:
        """This test's database ``vis_<purpose>``; it, its marker and its templates dropped after."""
        url = bind_url(self.backend, f"vis_{purpose}")
        self.addCleanup(self.drop_with_templates, url)
        return url

    def drop_with_templates(self, url: str) -> None:
        drop_database(url, force=True)
        path = (sa.make_url(url).database or "") + MARKER_SUFFIX
        if self.sqlite and os.path.exists(path):
            os.unlink(path)
        if not self.sqlite:  # SQLite's go with the cache folder
            for name in self.templates(url):
                drop_database(sa.make_url(url).set(database=name), force=True)

    def templates(self, url: str) -> set[str]:
        """The names of this database's templates, of every kind of schema source."""
        parsed = sa.make_url(url)
        prefixes = [provisioning._template_prefix(parsed, None, kind) for kind in ("alembic", "create_all")]
        if self.sqlite:
            names = {n.removesuffix(".db") for n in os.listdir(self.cache) if n.endswith(".db")}
            return {n for n in names if n.startswith(tuple(prefixes))}
        return set().union(*(server_databases(url, prefix) for prefix in prefixes))

    def environ(self, **env: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in CHILD_UNSET}
        base["PYTHONPATH"] = ROOT + os.pathsep + base.get("PYTHONPATH", "")
        base[environment.CACHE] = self.cache
        base[environment.VERBOSE] = "1"
        # Kept as users keep them (the suite's own default drops them): this test drops its own.
        base[environment.KEEP_TEMPLATES] = "1"
        return {**base, **env}

    def run_child(self, cwd: str = ROOT, env: t.Mapping[str, str] | None = None, **job: t.Any) -> Report:
        """Run the one-class suite with ``job`` in a fresh interpreter; it must pass."""
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(job)],
            cwd=cwd,
            env=self.environ(**(env or {})),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        output = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        reports = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
        self.assertEqual(len(reports), 1, output)
        report = json.loads(reports[0].removeprefix("REPORT "))
        self.assertTrue(report["ok"], output)
        self.assertEqual(proc.returncode, 0, output)
        return Report(report["stats"], report["alembic"], proc.stderr, output)

    def command(self, *argv: str) -> tuple[int, str]:
        """``python -m transactional_testcase *argv`` in a child: its exit status and output."""
        proc = subprocess.run(
            [sys.executable, "-m", "transactional_testcase", *argv],
            cwd=ROOT,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def server(self, url: str) -> str:
        """What the command is given for ``url``: the server, or ``sqlite`` for the cache."""
        return "sqlite" if self.sqlite else url


class _Lines(_Children):
    """One line per database for each way of provisioning, to stderr with the switch."""

    def test_built_cloned_kept_and_rebuilt_are_said(self) -> None:
        url = self.database("lines")
        if self.backend.name == "psycopg2":
            # Trust authentication ignores it; the lines must not show it.
            url = sa.make_url(url).set(password="pv-s3cret").render_as_string(hide_password=False)
        # As the library passes it to the app (PyMySQL's gets ?charset=utf8mb4).
        shown = re.escape(sa.make_url(url).render_as_string(hide_password=True)) + r"(\?\S+)?"

        built = self.run_child(url=url)
        self.assertEqual(built.how, "build", built.output)
        migrated = (
            rf"^transactional_testcase: Test database {shown}: migrated to head 0002_parts in \d+\.\d\ds; "
        )
        if provisioning.backend_for(sa.make_url(url)).renames_to_templates:
            # The database itself becomes the template when the process is done with it.
            line, renamed = built.lines
            self.assertRegex(
                line,
                migrated + r"to be renamed to template (tt_tpl_\w+_test) once this process is done "
                r"with it, unless a test committed into it$",
            )
            template = re.findall(r"template (tt_tpl_\w+_test)", line)[0]
            self.assertRegex(
                renamed, rf"^transactional_testcase: Test database {shown}: renamed to template {template}$"
            )
        else:
            (line,) = built.lines
            self.assertRegex(line, migrated + r"saved as template (tt_tpl_\w+_test)$")
            template = re.findall(r"template (tt_tpl_\w+_test)", line)[0]
        self.assertIn(template, self.templates(url))
        # Logged at INFO on the library's logger as well (basicConfig's format).
        self.assertRegex(built.stderr, rf"INFO:transactional_testcase:Test database {shown}: migrated")

        cloned = self.run_child(url=url)
        self.assertEqual(cloned.how, "clone", cloned.output)
        (line,) = cloned.lines
        self.assertRegex(
            line,
            rf"^transactional_testcase: Test database {shown}: cloned from template {template} in \d+\.\d\ds$",
        )

        first = self.run_child(url=url, keepdb=True)
        self.assertEqual(first.how, "clone", first.output)
        self.assertRegex(
            first.lines[0], r": no kept database yet; cloned from template .*; kept for the next run$"
        )
        kept = self.run_child(url=url, keepdb=True)
        self.assertEqual(kept.how, "keep", kept.output)
        self.assertRegex(
            kept.lines[0],
            rf"^transactional_testcase: Test database {shown}: using the kept database "
            r"\(schema fingerprint [0-9a-f]{12} unchanged\)$",
        )
        # What another schema left in it (as if the migrations had changed).
        backend = provisioning.backend_for(sa.make_url(url))
        backend.write_marker(sa.make_url(url), "0" * 64, "another schema")
        rebuilt = self.run_child(url=url, keepdb=True)
        self.assertEqual(rebuilt.how, "clone", rebuilt.output)
        self.assertRegex(
            rebuilt.lines[0],
            r": the kept database was rebuilt: schema fingerprint changed \(000000000000 -> [0-9a-f]{12}\); "
            r"cloned from template .*; kept for the next run$",
        )
        for report in (cloned, first, kept, rebuilt):
            self.assertEqual(len(report.lines), 1, report.output)
        for report in (built, cloned, first, kept, rebuilt):
            self.assertNotIn("pv-s3cret", report.stderr)

    def test_quiet_without_the_switch(self) -> None:
        url = self.database("quiet")
        report = self.run_child(url=url, env={environment.VERBOSE: "0"})
        self.assertEqual(report.printed, [], report.output)
        # Still logged: the app's basicConfig shows the library's INFO lines.
        self.assertIn("INFO:transactional_testcase:Test database", report.stderr)

    def test_said_once_when_logging_shows_it(self) -> None:
        """The child's basicConfig(level=INFO) shows each line: the switch prints none again."""
        url = self.database("once")
        report = self.run_child(url=url)
        self.assertTrue(report.lines, report.output)
        self.assertEqual(report.printed, [], report.output)
        for line in report.lines:
            self.assertEqual(report.stderr.count(line[len(PRINTED) :]), 1, report.output)


class _NoAlembic(_Children):
    """Alembic is for building: cloning and reusing never import it, building prints none of its lines."""

    def test_only_building_imports_alembic(self) -> None:
        url = self.database("noalembic")
        built = self.run_child(url=url)
        self.assertEqual(built.how, "build", built.output)
        self.assertIn("alembic.script", built.alembic)
        self.assertIsNone(
            ALEMBIC_LINE.search(built.stderr), "Alembic's INFO lines reached stderr:\n" + built.stderr
        )

        cloned = self.run_child(url=url, keepdb=True)
        self.assertEqual(cloned.how, "clone", cloned.output)
        self.assertEqual(cloned.alembic, [], "cloning imported Alembic")
        kept = self.run_child(url=url, keepdb=True)
        self.assertEqual(kept.how, "keep", kept.output)
        self.assertEqual(kept.alembic, [], "reusing a kept database imported Alembic")
        self.assertIsNone(ALEMBIC_LINE.search(kept.stderr), kept.stderr)


class _Coexisting(_Children):
    """Migrations and create_all() on one database: a template each, neither evicts the other."""

    def test_migrations_and_create_all_keep_their_own_templates(self) -> None:
        url = self.database("coexist")
        self.assertEqual(self.run_child(url=url).how, "build")
        self.assertEqual(self.run_child(url=url, alembic=False).how, "build")
        self.assertEqual(len(self.templates(url)), 2, self.templates(url))
        # Switching back and forth: clones, not builds.
        migrated = self.run_child(url=url)
        self.assertEqual(migrated.how, "clone", migrated.output)
        created = self.run_child(url=url, alembic=False)
        self.assertEqual(created.how, "clone", created.output)
        self.assertEqual(len(self.templates(url)), 2, self.templates(url))


class _Command(_Children):
    """``list`` and ``drop``: this test's leftovers only, said before done."""

    def test_list_then_drop(self) -> None:
        url = self.database("cmd_keep")
        self.assertEqual(self.run_child(url=url, keepdb=True).how, "build")
        (template,) = self.templates(url)
        kept_name = sa.make_url(url).database or ""
        stranger = self.database("cmd_stranger")  # a test database the library did not make
        provisioning.backend_for(sa.make_url(stranger)).recreate(sa.make_url(stranger))
        if self.sqlite:
            with open(sa.make_url(stranger).database or "", "w"):
                pass

        status, listed = self.command("list", self.server(url))
        self.assertEqual(status, 0, listed)
        rows = {ln.split()[1]: ln for ln in listed.splitlines() if ln.startswith(("template ", "kept "))}
        shown_template = os.path.join(self.cache, template + ".db") if self.sqlite else template
        self.assertIn(shown_template, rows, listed)
        self.assertIn(kept_name, rows, listed)
        self.assertTrue(rows[shown_template].startswith("template "), listed)
        self.assertTrue(rows[kept_name].startswith("kept "), listed)
        self.assertIn(f"alembic {plain_alembic.SCRIPTS}, migrated to head 0002_parts", rows[shown_template])
        self.assertIn(f"alembic {plain_alembic.SCRIPTS}", rows[kept_name])
        self.assertRegex(rows[kept_name], r"\d+(\.\d)? (B|kB|MB)\s+\d+ s\s")
        self.assertNotIn(sa.make_url(stranger).database or "", rows, listed)

        mine = ["--name", template, "--name", os.path.basename(kept_name), "--name", "*vis_cmd_stranger*"]
        status, said = self.command("drop", self.server(url), *mine)
        self.assertEqual(status, 0, said)
        self.assertIn("Would drop 2:", said)
        self.assertIn("Run again with --yes", said)
        self.assertTrue(database_exists(url), "a dry run dropped the kept database")
        self.assertEqual(self.templates(url), {template}, "a dry run dropped the template")

        # A refused rename's record (see provisioning._copy_record) goes with its template.
        record = os.path.join(self.cache, os.path.basename(shown_template) + ".copy")
        with open(record, "w"):
            pass
        status, said = self.command("drop", self.server(url), "--templates", *mine, "--yes")
        self.assertEqual(status, 0, said)
        self.assertIn(f"Dropped template {shown_template}", said)
        self.assertEqual(self.templates(url), set())
        self.assertFalse(os.path.exists(record), "the dropped template's record was left")
        self.assertTrue(database_exists(url), "--templates dropped the kept database")
        status, said = self.command("drop", self.server(url), "--kept", *mine, "--yes")
        self.assertEqual(status, 0, said)
        self.assertIn(f"Dropped kept {kept_name}", said)
        self.assertFalse(database_exists(url))
        self.assertTrue(database_exists(stranger), "dropped a database the library did not make")

        status, said = self.command("drop", self.server(url), *mine)
        self.assertEqual((status, said.strip()), (0, "Nothing to drop."))


generate_per_backend(
    _Lines, OuterCase, backends=backends_named("sqlite", "psycopg2", "pymysql"), name="Lines"
)
generate_per_backend(
    _NoAlembic, OuterCase, backends=backends_named("sqlite", "psycopg2", "pymysql"), name="NoAlembic"
)
generate_per_backend(
    _Coexisting, OuterCase, backends=backends_named("sqlite", "psycopg2", "pymysql"), name="Coexisting"
)
generate_per_backend(
    _Command, OuterCase, backends=backends_named("sqlite", "psycopg2", "pymysql"), name="Command"
)


class _DefaultSQLite(_Children):
    """The default SQLite database is the project's: two projects in turn clone and keep."""

    def project(self, name: str) -> str:
        folder = os.path.join(tempfile.mkdtemp(prefix="pv_vis_projects_"), name)
        os.makedirs(folder)
        self.addCleanup(shutil.rmtree, os.path.dirname(folder), True)
        with open(os.path.join(folder, "pyproject.toml"), "w", encoding="utf-8") as f:
            f.write("[project]\nname = 'x'\n")
        os.makedirs(os.path.join(folder, "sub"))
        return folder

    def test_two_projects_keep_their_own_templates_and_kept_files(self) -> None:
        one, two = self.project("one"), self.project("two")
        tmp = {"TMPDIR": tempfile.mkdtemp(prefix="pv_vis_tmp_")}
        self.addCleanup(shutil.rmtree, tmp["TMPDIR"], True)
        self.assertEqual(self.run_child(cwd=one, env=tmp).how, "build")
        self.assertEqual(self.run_child(cwd=two, env=tmp).how, "build")
        # From a subfolder of the project: the same project.
        self.assertEqual(self.run_child(cwd=os.path.join(one, "sub"), env=tmp).how, "clone")
        self.assertEqual(self.run_child(cwd=two, env=tmp).how, "clone")

        self.assertEqual(self.run_child(cwd=one, env=tmp, keepdb=True).how, "clone")
        self.assertEqual(self.run_child(cwd=two, env=tmp, keepdb=True).how, "clone")
        kept = self.run_child(cwd=one, env=tmp, keepdb=True)
        self.assertEqual(kept.how, "keep", kept.output)
        files = sorted(
            f
            for f in os.listdir(os.path.join(tmp["TMPDIR"], "transactional_testcase-keepdb"))
            if f.endswith(".db")
        )
        self.assertEqual(len(files), 2, files)
        self.assertTrue(all(f.startswith(("one_", "two_")) and f.endswith("_test.db") for f in files), files)
        self.assertIn(
            f"Test database sqlite:///{tmp['TMPDIR']}/transactional_testcase-keepdb/one_", kept.stderr
        )


generate_per_backend(_DefaultSQLite, OuterCase, backends=backends_named("sqlite"), name="DefaultSQLite")


class RevisionFiles(unittest.TestCase):
    """The fingerprint's files, read from alembic.ini without Alembic, are the ones Alembic reads."""

    def test_every_fixture_project_agrees_with_alembic(self) -> None:
        inis = sorted(
            os.path.join(root, "alembic.ini")
            for root, _, files in os.walk(os.path.join(ROOT, "tests", "apps"))
            if "alembic.ini" in files
        )
        self.assertGreater(len(inis), 10)
        for ini in inis:
            with self.subTest(ini=os.path.relpath(ini, ROOT)):
                light = AlembicProject.from_ini(ini)
                self.assertIsNotNone(light._layout, "read without Alembic")
                heavy = AlembicProject.from_ini(ini)
                heavy._layout = None  # what Alembic's ScriptDirectory says
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # legacy version_locations
                    expected = heavy.revision_files()
                self.assertEqual(light.revision_files(), expected)
                self.assertEqual(AlembicSchema(light).fingerprint(), AlembicSchema(heavy).fingerprint())

    def test_finding_a_project_and_its_fingerprint_imports_no_alembic(self) -> None:
        code = (
            "import sys; from transactional_testcase.alembic_runner import AlembicProject; "
            "from transactional_testcase.schema import AlembicSchema; "
            f"AlembicSchema(AlembicProject.from_ini({plain_alembic.ALEMBIC_INI!r})).fingerprint(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
        )
        env = {**os.environ, "PYTHONPATH": ROOT}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        self.assertEqual(done.stdout.strip(), "[]", done.stderr)


class SaidOnce(unittest.TestCase):
    """With ``TRANSACTIONAL_TESTCASE_VERBOSE=1``, a line logging shows on the terminal is not printed again."""

    def say(self, handler_stream: t.Callable[[], t.Any] | None) -> tuple[str, str]:
        """What stderr and the handler's stream got from one ``say()``: (stderr, handler)."""
        stderr = io.StringIO()
        logger = provisioning.logger
        saved = logger.level, logger.handlers[:], os.environ.get(environment.VERBOSE)
        os.environ[environment.VERBOSE] = "1"
        logger.setLevel(logging.INFO)
        handler = None
        try:
            with contextlib.redirect_stderr(stderr):
                if handler_stream is not None:
                    handler = logging.StreamHandler(handler_stream())
                    logger.addHandler(handler)
                provisioning.say("a provisioning line")
        finally:
            logger.setLevel(saved[0])
            logger.handlers[:] = saved[1]
            if saved[2] is None:
                os.environ.pop(environment.VERBOSE)
            else:
                os.environ[environment.VERBOSE] = saved[2]
        shown = handler.stream.getvalue() if handler is not None and handler.stream is not stderr else ""
        return stderr.getvalue(), shown

    def test_printed_without_a_terminal_handler(self) -> None:
        stderr, _ = self.say(None)
        self.assertEqual(stderr.count("a provisioning line"), 1, stderr)
        self.assertIn("transactional_testcase: ", stderr)

    def test_not_printed_again_when_logging_writes_to_stderr(self) -> None:
        stderr, _ = self.say(lambda: sys.stderr)  # as basicConfig(level=INFO) makes it
        self.assertEqual(stderr.count("a provisioning line"), 1, stderr)
        self.assertNotIn("transactional_testcase: ", stderr, "the handler's line, not the print")

    def test_printed_when_logging_writes_elsewhere(self) -> None:
        stderr, shown = self.say(io.StringIO)  # a log file, a capture
        self.assertEqual(stderr.count("a provisioning line"), 1, stderr)
        self.assertEqual(shown.count("a provisioning line"), 1, shown)


class Names(unittest.TestCase):
    """Template names: the user's database in them, within the servers' limits, still test databases."""

    def test_long_names_are_shortened_and_kept_apart(self) -> None:
        fingerprint = "f" * 64
        long = "postgresql://h/" + "a_very_long_application_database_name_for_the_test_" + "x" * 10
        other = "postgresql://h/" + "a_very_long_application_database_name_for_the_test_" + "y" * 10
        first = provisioning._template_name(sa.make_url(long), None, fingerprint)
        second = provisioning._template_name(sa.make_url(other), None, fingerprint)
        for name in (first, second):
            self.assertRegex(name, TEMPLATE_NAME)
            self.assertLessEqual(len(name.encode()), 63)
            self.assertTrue(name.startswith("tt_tpl_a_very_long_application_"), name)
        self.assertNotEqual(first, second, "the hash tells shortened names apart")
        self.assertEqual(
            provisioning._template_name(sa.make_url("mysql://h/Shop-Test.v2"), None, fingerprint)[:20],
            "tt_tpl_shop_test_v2_",
        )

    def test_kinds_of_schema_source_have_their_own_templates_and_share_a_lock(self) -> None:
        url = sa.make_url("postgresql://h/app_test")
        self.assertNotEqual(
            provisioning._template_prefix(url, None, "alembic"),
            provisioning._template_prefix(url, None, "create_all"),
        )
        self.assertFalse(
            provisioning._template_prefix(url, None, "alembic").startswith(
                provisioning._template_prefix(url, None, "create_all")
            )
        )
        self.assertTrue(provisioning._lock_name(url, None).startswith("tt_tpl_app_test_"))

    def test_drop_never_takes_a_name_without_test(self) -> None:
        url = sa.make_url("postgresql://h/x")
        leftover = Leftover("kept", "production", url, "", None, None)
        self.assertFalse(command._safe(leftover))
        self.assertTrue(command._safe(leftover._replace(name="/srv/app_test.db")))


if __name__ == "__main__":
    unittest.main()
