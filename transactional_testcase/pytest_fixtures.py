"""What the pytest plugin's fixtures do, imported when a test first asks for one.

The fixtures drive a :class:`~transactional_testcase.TransactionalTestCase`
subclass the user names (``transactional_testcase_class``) exactly as unittest
would drive it, so function-style tests get the class's guarantees from the
class's own code: one ``setUpClass`` per session (app, fresh migrated
databases, ``setUpTestData`` in the class transaction), each test between a
``setUp`` and the test's cleanups (its own rolled-back transaction, ``db.session``
redirected into it), and ``tearDownClass`` plus the class cleanups at the end.

The class is run as a subclass made here (:func:`function_test_class`): the
class data ``setUpTestData`` assigns, the app and the class state land on it,
never on the user's class, which may be the base of unittest classes of the
same run.

.. versionadded:: 0.4
"""

from __future__ import annotations

import importlib
import typing as t
import unittest

import pytest

from .app_testcase import AppTestCase
from .errors import ConfigurationError
from .testcase import TransactionalTestCase

#: Where the session's :class:`SessionCase` is kept.
SESSION_CASE = pytest.StashKey["SessionCase"]()


class FunctionTest(TransactionalTestCase):
    """Mixed into the user's class: a test instance that stands for one pytest function."""

    #: The pytest node id of the function the instance stands for.
    _tt_nodeid: t.ClassVar[str] = ""

    def id(self) -> str:
        return self.__dict__.get("_tt_nodeid") or super().id()

    def runTest(self) -> None:
        """Never run: the pytest function is the test."""


def function_test_class(cls: type[TransactionalTestCase]) -> type[TransactionalTestCase]:
    """A subclass of ``cls`` for function tests, named as ``cls`` in messages."""
    made = type(cls.__name__, (cls, FunctionTest), {"__module__": cls.__module__})
    made.__qualname__ = cls.__qualname__
    return made


def load_class(spec: str) -> type[TransactionalTestCase]:
    """The class named by the ``transactional_testcase_class`` ini option (``pkg.module:Class``)."""
    module_name, sep, name = spec.strip().partition(":")
    if not sep:
        module_name, _, name = module_name.rpartition(".")
    if not module_name or not name:
        raise ConfigurationError(
            f"transactional_testcase_class = {spec!r}: write 'package.module:ClassName'."
        )
    module = importlib.import_module(module_name)
    found: t.Any = module
    for part in name.split("."):
        found = getattr(found, part)
    return check_class(found, f"transactional_testcase_class = {spec!r}")


def check_class(value: t.Any, where: str) -> type[TransactionalTestCase]:
    if not (isinstance(value, type) and issubclass(value, TransactionalTestCase)):
        raise ConfigurationError(
            f"{where} names {value!r}: it must be a subclass of "
            "transactional_testcase.TransactionalTestCase (with create_app, database_url, ...)."
        )
    return value


class SessionCase:
    """The configured class, set up once for the session's function tests.

    Set up on the first test that needs it; stopped at the session's end, and
    before a unittest class of the library runs (both redirect the same
    ``db``): the next function test sets it up again (its databases are reused,
    and ``setUpTestData`` runs again).
    """

    def __init__(self, cls: type[TransactionalTestCase]) -> None:
        self.user_class = cls
        self.cls = function_test_class(cls)
        self.active = False
        #: ``setUpClass``'s error: every later test reports it, without trying again.
        self.failure: BaseException | None = None

    def start(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.active:
            return
        try:
            self.cls.setUpClass()
        except BaseException as exc:
            self.failure = exc
            _class_cleanups(self.cls, exc)
            raise
        self.active = True

    def stop(self) -> None:
        """``tearDownClass``, then the class cleanups (as unittest does)."""
        if not self.active:
            return
        self.active = False
        error: BaseException | None = None
        try:
            self.cls.tearDownClass()
        except BaseException as exc:  # noqa: BLE001 - raised after the cleanups
            error = exc
        _class_cleanups(self.cls, error)

    def start_test(self, nodeid: str) -> TransactionalTestCase:
        """``setUp`` of a new instance (its cleanups run if it fails)."""
        self.start()
        case = self.cls()
        case.__dict__["_tt_nodeid"] = nodeid
        try:
            case.setUp()
        except BaseException as exc:
            _cleanups(case, exc)
            raise
        return case

    def end_test(self, case: TransactionalTestCase) -> None:
        """``tearDown``, then the test's cleanups: the rollback, whatever happened."""
        error: BaseException | None = None
        try:
            case.tearDown()
        except BaseException as exc:  # noqa: BLE001 - raised after the cleanups
            error = exc
        _cleanups(case, error)


def session_case(config: pytest.Config, cls: t.Any) -> SessionCase:
    """The session's :class:`SessionCase` of ``cls`` (a new one, replacing another class's)."""
    cls = check_class(cls, "the transactional_testcase_class fixture")
    current = config.stash.get(SESSION_CASE, None)
    if current is not None and current.user_class is cls:
        return current
    if current is not None:
        current.stop()
    made = config.stash[SESSION_CASE] = SessionCase(cls)
    return made


def before_item(item: pytest.Item) -> None:
    """Before a unittest class of the library runs, stop the function tests' class (see :class:`SessionCase`)."""
    current = item.config.stash.get(SESSION_CASE, None)
    if current is None or not current.active:
        return
    owner = getattr(item, "cls", None)
    if isinstance(owner, type) and issubclass(owner, AppTestCase) and not issubclass(owner, FunctionTest):
        current.stop()


def stop(config: pytest.Config) -> None:
    current = config.stash.get(SESSION_CASE, None)
    if current is not None:
        current.stop()


def _cleanups(case: unittest.TestCase, error: BaseException | None) -> None:
    """Run ``case``'s cleanups, last added first; raise ``error`` or the first cleanup's error.

    ``TestCase.doCleanups`` reports errors to a result only: without one it
    would swallow them.
    """
    while case._cleanups:  # type: ignore[attr-defined]
        function, args, kwargs = case._cleanups.pop()  # type: ignore[attr-defined]
        try:
            function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the first one is raised below
            if error is None:
                error = exc
    if error is not None:
        raise error


def _class_cleanups(cls: type[unittest.TestCase], error: BaseException | None) -> None:
    """Run the class cleanups; raise ``error`` or the first cleanup's error."""
    cls.doClassCleanups()
    errors = getattr(cls, "tearDown_exceptions", [])
    if error is None and errors:
        error = errors[0][1]
    del errors[:]
    if error is not None:
        raise error
