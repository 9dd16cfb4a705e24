"""End-of-test fidelity: what a real COMMIT would have refused, and the diagnostics switch.

A test's "commit" is a RELEASE SAVEPOINT, which checks no deferred constraint;
the real COMMIT never comes. So before rolling a test back the library checks
what that COMMIT would have checked: PostgreSQL's deferred constraints (``SET
CONSTRAINTS ALL IMMEDIATE``) and SQLite's deferred foreign keys (``PRAGMA
foreign_key_check``, while foreign keys are enforced). The check is on by
default, off with ``check_constraints = False``, and costs nothing for a test
that wrote nothing.

``TRANSACTIONAL_TESTCASE_DIAGNOSTICS=1`` logs, per test, the transaction
statements that reached the database and flags at WARNING what escaped the
test's transaction.

As in ``tests/test_faults.py``, the ``<Name>_<backend>`` classes run small
inner TransactionalTestCase classes and read their results from outside: a
failure raised while a test is torn down cannot be asserted from inside it.
Fixture app: ``tests/apps/fidelity.py`` (a DEFERRABLE INITIALLY DEFERRED
foreign key, and every statement recorded).
"""

from __future__ import annotations

import logging
import os
import typing as t
import unittest
from unittest import mock

import flask
import sqlalchemy as sa

from tests import test_faults as faults
from tests.admin import leftover_rows
from tests.apps import fidelity, shop
from tests.matrix import BackendUnderTest, OuterCase, bind_url
from tests.running import RecordingResult, outcome, run_case, transcript
from transactional_testcase import (
    IsolationError,
    TransactionalTestCase,
    diagnostics,
    provisioning,
)

DIAGNOSTICS_LOGGER = "transactional_testcase.diagnostics"

if t.TYPE_CHECKING:
    _Inner = TransactionalTestCase
    _Outer = OuterCase
else:
    _Inner = object
    _Outer = object


def count(model: type[t.Any]) -> int:
    return fidelity.db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


# -- deferred constraints -------------------------------------------------------------------------


class _Recorded(_Inner):
    """Labels the statements the fidelity app records with the running test's name.

    The label is set before the library's setUp and cleared by a cleanup
    registered before the library's own, so it also covers what the library
    sends at the end of the test.
    """

    def setUp(self) -> None:
        fidelity.current[0] = self._testMethodName
        self.addCleanup(fidelity.current.__setitem__, 0, "")
        super().setUp()


class _DeferredChecks(_Inner):
    """Tests on the deferred foreign key (PostgreSQL and SQLite)."""

    def test_commits_a_violation(self) -> None:
        fidelity.db.session.add(fidelity.Child(parent_id=999))
        fidelity.db.session.commit()  # RELEASE SAVEPOINT: the deferred check does not run
        self.assertEqual(count(fidelity.Child), 1)

    def test_repairs_the_violation_before_the_end(self) -> None:
        fidelity.db.session.add(fidelity.Child(parent_id=998))
        fidelity.db.session.commit()
        fidelity.db.session.add(fidelity.Parent(id=998))
        fidelity.db.session.commit()

    def test_valid_rows(self) -> None:
        fidelity.db.session.add(fidelity.Parent(id=1))
        fidelity.db.session.flush()
        fidelity.db.session.add(fidelity.Child(parent_id=1))
        fidelity.db.session.commit()
        self.assertEqual(count(fidelity.Child), 1)

    def test_reads_only(self) -> None:
        self.assertEqual(count(fidelity.Child), 0)

    def test_sends_nothing(self) -> None:
        self.assertIsNotNone(self.app)


class _ImmediateChecks(_Inner):
    """The same tests on MySQL/MariaDB, whose foreign keys are checked per statement."""

    def test_violation_fails_at_once(self) -> None:
        fidelity.db.session.add(fidelity.Child(parent_id=999))
        with self.assertRaises(sa.exc.IntegrityError):
            fidelity.db.session.flush()
        fidelity.db.session.rollback()

    test_valid_rows = _DeferredChecks.test_valid_rows
    test_reads_only = _DeferredChecks.test_reads_only
    test_sends_nothing = _DeferredChecks.test_sends_nothing


class _ParentClassData(_Inner):
    parent: t.ClassVar[fidelity.Parent]

    @classmethod
    def setUpTestData(cls) -> None:
        cls.parent = fidelity.Parent(id=500)
        fidelity.db.session.add(cls.parent)

    def test_reads_only(self) -> None:
        self.assertEqual(count(fidelity.Parent), 1)
        self.assertEqual(count(fidelity.Child), 0)


WRITING_TESTS = {"test_commits_a_violation", "test_repairs_the_violation_before_the_end", "test_valid_rows"}
QUIET_TESTS = {"test_reads_only", "test_sends_nothing"}


def fidelity_case(backend: BackendUnderTest, *mixins: type, **attrs: t.Any) -> type[TransactionalTestCase]:
    """An inner class on the fidelity app, database ``..._fidelity``."""
    app_config = attrs.pop("app_config", {})

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        return fidelity.create_app({**config, **app_config})

    name = "_".join([m.__name__.strip("_") for m in mixins] + ["fidelity", backend.name])
    namespace: dict[str, t.Any] = {
        "__module__": faults.INNER_MODULE,
        "__qualname__": name,
        "database_url": bind_url(backend, "fidelity"),
        "alembic_config": False,
        "create_app": classmethod(create_app),
        **attrs,
    }
    return type(name, (*mixins, _Recorded, TransactionalTestCase), namespace)


class _FidelityChecks(_Outer):
    def run_fidelity(self, *mixins: type, **attrs: t.Any) -> RecordingResult:
        fidelity.statements.clear()
        self.addCleanup(fidelity.statements.clear)
        result = run_case(fidelity_case(self.backend, *mixins, **attrs))
        self.assertGreater(result.testsRun, 0)
        self.assertEqual(result.errors, [])
        url = provisioning.worker_url(bind_url(self.backend, "fidelity")).render_as_string(
            hide_password=False
        )
        self.assertEqual(leftover_rows(url), {})
        return result

    def statements_of(self, *fragments: str) -> dict[str, list[str]]:
        """The recorded statements containing one of ``fragments``, by test."""
        found: dict[str, list[str]] = {}
        for label, statement in fidelity.statements:
            if any(fragment in statement for fragment in fragments):
                found.setdefault(label, []).append(statement)
        return found

    def assert_only_the_violation_fails(self, result: RecordingResult) -> str:
        self.assertEqual(outcome(result)["failures"], {"test_commits_a_violation"}, transcript(result))
        self.assertEqual(result.testsRun, len(WRITING_TESTS | QUIET_TESTS))
        message = str(result.raised_by("test_commits_a_violation"))
        self.assertIn("a real COMMIT would have refused", message)
        return message


@faults.per_backend(*faults.POSTGRES)
class DeferredConstraintsOnPostgreSQL(_FidelityChecks):
    """SET CONSTRAINTS ALL IMMEDIATE before the rollback of a test that wrote something."""

    def test_violation_fails_the_test_at_teardown(self) -> None:
        result = self.run_fidelity(_DeferredChecks)
        message = self.assert_only_the_violation_fails(result)
        self.assertIn(fidelity.DEFERRED_FK, message)
        self.assertIn("fid_children", message)
        checks = self.statements_of("SET CONSTRAINTS")
        self.assertEqual(set(checks), WRITING_TESTS, "only the tests that wrote are checked")
        for name in WRITING_TESTS:
            self.assertEqual(checks[name], ["SET CONSTRAINTS ALL IMMEDIATE"], name)

    def test_violation_fails_the_test_with_class_data(self) -> None:
        result = self.run_fidelity(_ParentClassData, _DeferredChecks)
        self.assertIn(fidelity.DEFERRED_FK, self.assert_only_the_violation_fails(result))
        self.assertEqual(set(self.statements_of("SET CONSTRAINTS")), WRITING_TESTS)

    def test_check_constraints_off(self) -> None:
        result = self.run_fidelity(_DeferredChecks, check_constraints=False)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(self.statements_of("SET CONSTRAINTS"), {})


@faults.per_backend("sqlite")
class DeferredForeignKeysOnSQLite(_FidelityChecks):
    """PRAGMA foreign_key_check before the rollback, while foreign keys are enforced."""

    def test_violation_fails_the_test_at_teardown(self) -> None:
        result = self.run_fidelity(_DeferredChecks)
        message = self.assert_only_the_violation_fails(result)
        self.assertIn("fid_children", message)
        self.assertIn("fid_parents", message)
        checks = self.statements_of("PRAGMA foreign_key")
        self.assertEqual(set(checks), WRITING_TESTS, "only the tests that wrote are checked")
        self.assertTrue(all("PRAGMA foreign_key_check" in c for c in checks.values()), checks)

    def test_violation_fails_the_test_with_class_data(self) -> None:
        result = self.run_fidelity(_ParentClassData, _DeferredChecks)
        self.assertIn("fid_children", self.assert_only_the_violation_fails(result))

    def test_foreign_keys_not_enforced(self) -> None:
        """Without PRAGMA foreign_keys=ON SQLite's COMMIT checks nothing: neither may the library."""
        result = self.run_fidelity(_DeferredChecks, app_config={"FIDELITY_SQLITE_FOREIGN_KEYS": False})
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(self.statements_of("PRAGMA foreign_key_check"), {})

    def test_check_constraints_off(self) -> None:
        result = self.run_fidelity(_DeferredChecks, check_constraints=False)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(self.statements_of("PRAGMA foreign_key"), {})


@faults.per_backend(*faults.MYSQL)
class ConstraintChecksOnMySQL(_FidelityChecks):
    """MySQL/MariaDB defers nothing: the check is a no-op that breaks nothing."""

    def test_check_constraints_breaks_nothing(self) -> None:
        for check in (True, False):
            with self.subTest(check_constraints=check):
                result = self.run_fidelity(_ImmediateChecks, check_constraints=check)
                self.assertEqual(result.testsRun, 4)
                self.assertTrue(result.wasSuccessful(), transcript(result))
                self.assertEqual(self.statements_of("SET CONSTRAINTS", "PRAGMA"), {})


# -- diagnostics --------------------------------------------------------------------------------------


class _Diagnosed(_Inner):
    """Tests whose transaction statements the diagnostics log must show."""

    def test_a_commits(self) -> None:
        shop.session.add_all([shop.Customer(email="d@example.com"), shop.AuditEntry(message="d")])
        shop.session.commit()

    def test_b_rolls_back_a_savepoint(self) -> None:
        with shop.session.begin_nested() as nested:
            shop.session.add(shop.Customer(email="n@example.com"))
            shop.session.flush()
            nested.rollback()
        self.assertEqual(faults.customers(), 0)

    def test_c_commits_the_test_transaction(self) -> None:
        self.db.session.connection().commit()

    def test_d_implicit_commit(self) -> None:
        # (Only on MySQL/MariaDB: other backends leave this test out.)
        shop.session.execute(sa.text(f"CREATE TABLE {faults.TMP_TABLE} (id INT)"))

    def test_e_reads_only(self) -> None:
        self.assertEqual(faults.customers(), 0)


@faults.per_backend()
class Diagnostics(faults._Checks):
    """TRANSACTIONAL_TESTCASE_DIAGNOSTICS=1: per-test transaction log, escapes flagged at WARNING."""

    def setUp(self) -> None:
        self.mysql = self.backend.name in faults.MYSQL
        self.url = faults.database_urls(self.backend, faults.SHARED)[0]
        self.addCleanup(faults.drop_table, self.url, faults.TMP_TABLE)

    def case(self) -> type[TransactionalTestCase]:
        attrs = {} if self.mysql else {"test_d_implicit_commit": None}
        return faults.inner(self.backend, faults.SHARED, _Diagnosed, **attrs)

    def by_test(self, records: list[logging.LogRecord], level: int) -> dict[str, list[str]]:
        """Messages at ``level``, by the name of the test they begin with."""
        found: dict[str, list[str]] = {}
        for record in records:
            if record.levelno != level:
                continue
            message = record.getMessage()
            test_id, _, rest = message.partition(": ")
            self.assertTrue(test_id.startswith(faults.INNER_MODULE + "."), message)
            found.setdefault(test_id.rsplit(".", 1)[1], []).append(rest)
        return found

    def test_transaction_statements_logged_per_test(self) -> None:
        with (
            mock.patch.dict(os.environ, {diagnostics.ENV: "1"}),
            self.assertLogs(DIAGNOSTICS_LOGGER, "INFO") as logs,
        ):
            result = run_case(self.case())
        expected_errors = {"test_c_commits_the_test_transaction"} | (
            {"test_d_implicit_commit"} if self.mysql else set()
        )
        self.assertEqual(outcome(result)["errors"], expected_errors, transcript(result))
        self.assertEqual(outcome(result)["failures"], set(), transcript(result))
        for name in expected_errors:
            self.assertIsInstance(result.raised_by(name), IsolationError)

        info = self.by_test(logs.records, logging.INFO)
        self.assertEqual(set(info), set(unittest.TestLoader().getTestCaseNames(self.case())))
        for name, lines in info.items():
            self.assertEqual(len(lines), 1, f"{name}: one line per test")
            self.assertTrue(lines[0].startswith("BEGIN"), lines[0])
        database = sa.make_url(self.url).database or ""
        commits = info["test_a_commits"][0]
        for statement in ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK"):
            self.assertIn(statement, commits)
        # On a server the session's savepoint in the untouched transaction
        # was its start: logged, marked, not sent.
        spared = self.backend.name != "sqlite"
        self.assertEqual("RELEASE SAVEPOINT sa_savepoint_1 (not sent)" in commits, spared, commits)
        self.assertIn(database, commits)
        self.assertRegex(commits, r"ROLLBACK \[[^\]]+\]$", "the test's own rollback ends the line")
        self.assertIn("ROLLBACK TO SAVEPOINT", info["test_b_rolls_back_a_savepoint"][0])
        self.assertIn("COMMIT", info["test_c_commits_the_test_transaction"][0])

        warnings = self.by_test(logs.records, logging.WARNING)
        self.assertEqual(set(warnings), expected_errors, "only escapes are flagged")
        (escaped,) = warnings["test_c_commits_the_test_transaction"]
        self.assertIn("ESCAPED", escaped)
        self.assertIn("COMMIT", escaped)
        if self.mysql:
            (implicit,) = warnings["test_d_implicit_commit"]
            self.assertIn("implicit commit", implicit)
            self.assertIn(f"CREATE TABLE {faults.TMP_TABLE}", implicit)

    def test_silent_when_off(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != diagnostics.ENV}
        with mock.patch.dict(os.environ, env, clear=True), self.assertNoLogs(DIAGNOSTICS_LOGGER, "DEBUG"):
            result = run_case(self.case())
        self.assertGreater(result.testsRun, 0)
        self.assertIn("test_c_commits_the_test_transaction", outcome(result)["errors"])


if __name__ == "__main__":
    unittest.main()
