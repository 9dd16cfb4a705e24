"""The class settings and class lifecycle every test case of the library shares.

:class:`AppTestCase` is the one path from a class's settings to its app:
``setUpClass`` makes the ``config`` (:meth:`~AppTestCase.get_app_config`),
checks that its URLs' drivers are installed, calls
:meth:`~AppTestCase.create_app` (its errors mapped to the library's, with every
password masked), and hands the app to the subclass's
:meth:`~AppTestCase._tt_set_up_class`. A class cleanup registered first
releases everything (:meth:`ClassState.close
<transactional_testcase.state.ClassState.close>`) even when a subclass's own
``setUpClass`` fails after ``super().setUpClass()``, and the app is dropped from
the class after it.

.. versionadded:: 0.4
   ``MigrationsTestCase`` had a copy of this that printed passwords.
"""

from __future__ import annotations

import os
import traceback
import typing as t
import unittest

from flask import Flask
from sqlalchemy.engine import URL, make_url

from . import environment
from ._types import BindKey
from .alembic_runner import AlembicSetting
from .backends import DRIVER_MODULES, check_driver, install_hint
from .errors import ConfigurationError, MissingDriverError, TransactionalTestCaseError, first_line, scrub
from .provisioning import provisioner, worker_url
from .state import ClassState

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy


class AppTestCase(unittest.TestCase):
    """A test case class that builds its Flask app once, from its settings.

    Not used directly: the base of
    :class:`~transactional_testcase.DatabaseTestCase` and
    :class:`~transactional_testcase.MigrationsTestCase`.
    """

    #: URL of the test database. ``None``: the ``TEST_DATABASE_URL`` environment
    #: variable, else a SQLite file in a temporary folder.
    database_url: t.ClassVar[str | None] = None

    #: Path of ``alembic.ini`` or of the folder holding it (Flask-Migrate's
    #: layout). ``None``: Flask-Migrate's registered directory, ``./alembic.ini``
    #: or ``./migrations/alembic.ini``. ``False``: ``db.create_all()``.
    alembic_config: t.ClassVar[AlembicSetting] = None

    #: ``{bind_key: url}``: more test databases, passed as ``SQLALCHEMY_BINDS``.
    binds: t.ClassVar[t.Mapping[str, str]] = {}

    #: The app built by :meth:`create_app`.
    app: t.ClassVar[Flask]
    #: The app's Flask-SQLAlchemy extension.
    db: t.ClassVar[SQLAlchemy]

    _tt_state: t.ClassVar[ClassState | None] = None

    # -- hooks ---------------------------------------------------------------------

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        """Build the app under test from ``config`` (called once per class).

        ``config`` is a plain dict holding ``TESTING``,
        ``SQLALCHEMY_DATABASE_URI`` and, when :attr:`binds` is set,
        ``SQLALCHEMY_BINDS``. Apply it before ``db.init_app(app)``:
        Flask-SQLAlchemy 3 builds the engines there.
        """
        raise ConfigurationError(
            f"{cls.__qualname__} must define the classmethod create_app(cls, config) "
            "that returns the Flask app built from config, e.g. "
            "'return myapp.create_app(config)'."
        )

    @classmethod
    def get_database_url(cls) -> str:
        """The default database's URL: :attr:`database_url`, ``TEST_DATABASE_URL`` or SQLite."""
        return (
            cls.database_url
            or os.environ.get(environment.DATABASE_URL)
            or provisioner.default_sqlite_url(keepdb=cls._tt_keepdb())
        )

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        """The ``config`` handed to :meth:`create_app`; override to add keys.

        Under a parallel runner each worker's database names get the worker's
        suffix (``myapp_test_gw0``), so workers never share a database.
        """
        config: dict[str, t.Any] = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": cls._tt_url_for(cls.get_database_url(), None),
        }
        if cls.binds:
            config["SQLALCHEMY_BINDS"] = {k: cls._tt_url_for(v, k) for k, v in cls.binds.items()}
        return config

    @classmethod
    def _tt_database_url(cls, url: str | URL, key: BindKey) -> URL:
        """The URL the class's app gets for the database ``url`` of bind ``key``."""
        return worker_url(url)

    @classmethod
    def _tt_url_for(cls, value: t.Any, key: BindKey) -> t.Any:
        if isinstance(value, str | URL):
            return cls._tt_database_url(value, key).render_as_string(hide_password=False)
        return value  # a dict of engine options: left as the user wrote it

    @classmethod
    def _tt_keepdb(cls) -> bool:
        """Whether the class keeps its databases for the next run."""
        return False

    # -- class lifecycle -------------------------------------------------------------

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        state = cls._tt_state = ClassState()
        # Also undone when a subclass's setUpClass fails after this returns:
        # unittest then runs class cleanups, but not tearDownClass.
        cls.addClassCleanup(cls._tt_release, state)
        try:
            config = cls.get_app_config()
            cls._tt_check_urls(requested_urls(config))
            app = cls._tt_build_app(config)
            db = _extension_of(app, cls)
            cls.app, cls.db = app, db
            state.app, state.db = app, db
            cls._tt_set_up_class(state, config)
        except TransactionalTestCaseError as exc:
            cls._tt_release(state)
            shorter = said_once(exc, cls)
            if shorter is None:
                raise
            raise shorter from None
        except BaseException:
            cls._tt_release(state)
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            if cls._tt_state is not None:
                cls._tt_release(cls._tt_state)
        finally:
            super().tearDownClass()

    @classmethod
    def _tt_set_up_class(cls, state: ClassState, config: t.Mapping[str, t.Any]) -> None:
        """What the class does with its app (a subclass hook)."""

    @classmethod
    def _tt_check_urls(cls, requested: t.Mapping[BindKey, t.Any]) -> None:
        """Refuse URLs the class cannot use before the app is built: here, missing drivers."""
        for value in requested.values():
            check_driver(make_url(value if isinstance(value, str | URL) else value["url"]))

    @classmethod
    def _tt_release(cls, state: ClassState) -> None:
        """Undo everything ``setUpClass`` did (once; later calls do nothing).

        .. versionchanged:: 0.2
           Also drops :attr:`app`: test case classes live as long as the run,
           and each would otherwise keep its app (routes, templates, config)
           alive to the end.
        """
        if cls._tt_state is state:
            cls._tt_state = None
        app = state.app
        try:
            state.close()
        finally:
            if app is not None and cls.__dict__.get("app") is app:
                del cls.app

    @classmethod
    def _tt_build_app(cls, config: dict[str, t.Any]) -> Flask:
        """``create_app(config)``, its errors said as the library's, without passwords."""
        try:
            app = cls.create_app(config)
        except TransactionalTestCaseError:
            raise
        except ImportError as exc:
            driver = DRIVER_MODULES.get((exc.name or "").split(".")[0])
            if driver is None:
                raise  # the app's own import: its traceback says more than any message
            raise MissingDriverError(
                f"{cls.__qualname__}.create_app() needs the {driver!r} database driver, "
                f"which is not installed: {install_hint(driver)}."
            ) from None
        except Exception as exc:
            # The factory's own traceback, told here with the passwords scrubbed:
            # chained, it would print the exception's message as the app wrote it.
            where = "".join(traceback.format_exception(exc)).rstrip()
            raise ConfigurationError(
                scrub(
                    f"{cls.__qualname__}.create_app(config) raised {type(exc).__name__}: {exc}\n\n"
                    f"The factory's traceback:\n{where}",
                    *_urls(config),
                )
            ) from None
        if not isinstance(app, Flask):
            raise ConfigurationError(
                f"{cls.__qualname__}.create_app(config) returned {app!r}, not a Flask app: "
                "it must return the application it built."
            )
        return app


#: The setup errors said in full in this process: (type, message with the
#: class's name left out) -> the class whose setUpClass said it.
said: dict[tuple[type[BaseException], str], str] = {}


def said_once(exc: TransactionalTestCaseError, owner: type) -> TransactionalTestCaseError | None:
    """None the first time this process meets ``exc``'s cause; after that, a one-line error pointing to it.

    One misconfiguration (an unsafe name, a server that is down) fails every
    class of a run: its full explanation is worth reading once, not once per
    class (pytest prints every class's error).

    .. versionadded:: 0.4
    """
    name = owner.__qualname__
    key = (type(exc), str(exc).replace(name, "{class}"))
    first = said.setdefault(key, name)
    if first == name:
        return None
    return type(exc)(f"{first_line(exc)} (the same error as {first}.setUpClass, explained in full there)")


def requested_urls(config: t.Mapping[str, t.Any]) -> dict[BindKey, t.Any]:
    """Per bind key, what ``config`` asks for: a URL, or a dict of engine options with ``url``."""
    return {None: config["SQLALCHEMY_DATABASE_URI"], **config.get("SQLALCHEMY_BINDS", {})}


def _extension_of(app: Flask, cls: type) -> SQLAlchemy:
    db: SQLAlchemy | None = app.extensions.get("sqlalchemy")
    if db is None:
        raise ConfigurationError(
            f"the app built by {cls.__qualname__}.create_app() has no Flask-SQLAlchemy "
            "extension: create_app must call db.init_app(app) (or SQLAlchemy(app))."
        )
    return db


def _urls(config: t.Mapping[str, t.Any]) -> list[t.Any]:
    """Every URL in ``config``, for scrubbing their passwords out of messages."""
    urls = []
    for value in requested_urls(config).values():
        urls.append(value.get("url") if isinstance(value, dict) else value)
    return [u for u in urls if isinstance(u, str | URL)]
