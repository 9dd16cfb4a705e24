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

.. versionchanged:: 0.4
   ``create_app`` is optional: :attr:`~AppTestCase.flask_app` names an app
   (built at import, whose engines the library points at the test databases)
   or a factory, and without either the app is found as the ``flask`` command
   finds it (:mod:`~transactional_testcase.app_discovery`). A ``create_app``
   that is an instance method or lacks ``@classmethod`` is refused with the fix.
"""

from __future__ import annotations

import inspect
import logging
import os
import traceback
import typing as t
import unittest

from flask import Flask
from sqlalchemy.engine import URL, make_url

from . import app_discovery, environment
from ._types import BindKey
from .alembic_runner import AlembicSetting
from .app_discovery import AppSource
from .app_engines import PointedEngines
from .backends import DRIVER_MODULES, check_driver, install_hint
from .errors import (
    ConfigurationError,
    MissingDriverError,
    TransactionalTestCaseError,
    first_line,
    mask_url,
    scrub,
)
from .extension import Extension, MetadataSetting, extension_of, requested_urls, url_config
from .provisioning import provisioner, worker_url
from .state import ClassState

logger = logging.getLogger("transactional_testcase")


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
    #: layout). ``None``: the app's Flask-Alembic configuration when it
    #: registers Flask-Alembic, else Flask-Migrate's registered directory,
    #: ``./alembic.ini`` or ``./migrations/alembic.ini``. ``False``:
    #: ``db.create_all()``.
    #:
    #: .. versionchanged:: 0.5
    #:    ``None`` finds Flask-Alembic's migrations.
    alembic_config: t.ClassVar[AlembicSetting] = None

    #: ``{bind_key: url}``: more test databases, passed as ``SQLALCHEMY_BINDS``
    #: (Flask-SQLAlchemy-Lite: ``SQLALCHEMY_ENGINES``). A value may also be a dict
    #: of engine options with ``url``, as the extensions take it.
    #:
    #: .. versionchanged:: 0.5
    #:    A dict's ``url`` gets the worker's suffix under a parallel runner (and
    #:    the migration checks' ``_migrations`` name) like a plain URL.
    binds: t.ClassVar[t.Mapping[str, str | t.Mapping[str, t.Any]]] = {}

    #: The app to test when the class defines no :meth:`create_app`: a Flask app
    #: (built at import: its engines are pointed at the test databases for the
    #: class), a factory (one that takes a parameter is handed the test
    #: ``config``), or the import path of either (``"myapp:app"``,
    #: ``"myapp:create_app"``, ``"myapp"``; ``FLASK_APP``'s syntax). ``None``:
    #: found as the ``flask`` command finds it (``FLASK_APP``, ``wsgi.py``,
    #: ``app.py``).
    #:
    #: .. versionadded:: 0.4
    flask_app: t.ClassVar[t.Any] = None

    #: The models' ``MetaData``, for an extension that keeps none
    #: (Flask-SQLAlchemy-Lite): ``Base.metadata``, or ``{bind_key: MetaData}``
    #: (``None`` or ``"default"`` for the default engine). Needed for
    #: ``alembic_config = False`` and the migration checks' model comparison.
    #: ``None``: Flask-Alembic's ``metadatas`` when the app registers it.
    #: Flask-SQLAlchemy apps use ``db.metadatas``.
    #:
    #: .. versionadded:: 0.5
    metadata: t.ClassVar[MetadataSetting] = None

    #: The app built by :meth:`create_app`.
    app: t.ClassVar[Flask]
    #: The app's SQLAlchemy extension (Flask-SQLAlchemy's or Flask-SQLAlchemy-Lite's ``db``).
    #:
    #: .. versionchanged:: 0.5
    #:    Flask-SQLAlchemy-Lite's too.
    db: t.ClassVar[t.Any]

    _tt_state: t.ClassVar[ClassState | None] = None
    #: Where the running class's app came from, and its pointed engines (apps not built from config).

    # -- hooks ---------------------------------------------------------------------

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        """Build the app under test from ``config`` (called once per class).

        ``config`` is a plain dict holding ``TESTING``,
        ``SQLALCHEMY_DATABASE_URI`` and, when :attr:`binds` is set,
        ``SQLALCHEMY_BINDS``; and the same URLs as Flask-SQLAlchemy-Lite's
        ``SQLALCHEMY_ENGINES``. Apply it before ``db.init_app(app)``:
        the extension builds the engines there, and
        ``app.config.update(config)`` after the factory returned is too late.
        For a factory that takes a config class or name, see
        :func:`~transactional_testcase.config_class` and
        :func:`~transactional_testcase.registered_config`.

        Not overridden: the app named by :attr:`flask_app`, else the one the
        ``flask`` command would find.

        .. versionchanged:: 0.4
           Optional.
        """
        state = cls._tt_state
        source = state.source if state is not None and state.source is not None else cls._tt_app_source()
        app: Flask = source.build(config)
        return app

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

        .. versionchanged:: 0.5
           Also holds ``SQLALCHEMY_ENGINES``, Flask-SQLAlchemy-Lite's key.
        """
        urls: dict[BindKey, t.Any] = {None: cls._tt_url_for(cls.get_database_url(), None)}
        urls.update((k, cls._tt_url_for(v, k)) for k, v in cls.binds.items())
        return {"TESTING": True, **url_config(urls)}

    @classmethod
    def _tt_database_url(cls, url: str | URL, key: BindKey) -> URL:
        """The URL the class's app gets for the database ``url`` of bind ``key``."""
        return worker_url(url)

    @classmethod
    def _tt_url_for(cls, value: t.Any, key: BindKey) -> t.Any:
        if isinstance(value, str | URL):
            return cls._tt_database_url(value, key).render_as_string(hide_password=False)
        if isinstance(value, t.Mapping) and "url" in value:  # engine options: their URL like any other
            return {**value, "url": cls._tt_url_for(value["url"], key)}
        return value

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
            source = state.source = cls._tt_app_source()
            app = cls._tt_build_app(config)
            extension = _extension_of(app, cls)
            cls.app, cls.db = app, extension.db
            state.app, state.extension = app, extension
            logger.info("%s: testing %s", cls.__qualname__, source.describe())
            if not source.takes_config:
                config = cls._tt_point_engines(state, config)
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
    def _tt_extension(cls) -> Extension:
        """The running class's SQLAlchemy extension."""
        state = cls._tt_state
        assert state is not None and state.extension is not None, "set in setUpClass"
        return state.extension

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
    def _tt_app_source(cls) -> AppSource:
        """Where the class's app comes from: its ``create_app``, :attr:`flask_app`, or the ``flask`` command's rules."""
        name = cls.__qualname__
        raw = inspect.getattr_static(cls, "create_app")
        if raw is not _BASE_CREATE_APP:
            _check_create_app(cls, raw)
            return AppSource(name=f"{name}.create_app", found="", factory=cls.create_app, takes_config=True)
        try:
            if cls.flask_app is not None:
                return app_discovery.named(cls.flask_app, name)
            return app_discovery.discover(name)
        except TransactionalTestCaseError:
            raise
        except ImportError as exc:
            missing = _missing_driver(exc, f"{name}'s app")
            if missing is None:
                raise  # the app's own import: its traceback says more than any message
            raise missing from None
        except Exception as exc:
            where = "".join(traceback.format_exception(exc)).rstrip()
            raise ConfigurationError(
                scrub(
                    f"{name}: importing its app raised {type(exc).__name__}: {exc}\n\n"
                    f"The traceback:\n{where}",
                    *_urls(cls.get_app_config()),
                )
            ) from None

    @classmethod
    def _tt_build_app(cls, config: dict[str, t.Any]) -> Flask:
        """``create_app(config)``, its errors said as the library's, without passwords."""
        state = cls._tt_state
        source = (state.source if state is not None else None) or AppSource(
            name=f"{cls.__qualname__}.create_app", found="", factory=cls.create_app, takes_config=True
        )
        call = source.call
        try:
            app = cls.create_app(config)
        except TransactionalTestCaseError:
            raise
        except ImportError as exc:
            missing = _missing_driver(exc, call)
            if missing is None:
                raise  # the app's own import: its traceback says more than any message
            raise missing from None
        except Exception as exc:
            # The factory's own traceback, told here with the passwords scrubbed:
            # chained, it would print the exception's message as the app wrote it.
            where = "".join(traceback.format_exception(exc)).rstrip()
            found = f" (found through {source.found})" if source.found else ""
            hint = (
                "\n\nIt was handed the test configuration, a dict: a factory that takes a config name "
                "or class needs a create_app(cls, config) classmethod that calls it with "
                "registered_config() or config_class() (see docs/guide/app-factory.rst)."
                if source.found and source.takes_config
                else ""
            )
            raise ConfigurationError(
                scrub(
                    f"{call}{found} raised {type(exc).__name__}: {exc}{hint}\n\n"
                    f"The factory's traceback:\n{where}",
                    *_urls(config),
                )
            ) from None
        if not isinstance(app, Flask):
            raise ConfigurationError(
                f"{call} returned {app!r:.100}, not a Flask app: it must return the application it built."
            )
        return app

    @classmethod
    def _tt_point_engines(cls, state: ClassState, config: dict[str, t.Any]) -> dict[str, t.Any]:
        """Point the engines of an app not built from ``config`` at the test databases; the config used.

        Per bind: the database the class names (:attr:`database_url`,
        ``TEST_DATABASE_URL``, :attr:`binds`), else the app's own, each with the
        worker's suffix under a parallel runner (and refused later unless its
        name contains ``test``).
        """
        app, extension = cls.app, state.extension
        assert extension is not None
        own = extension.engines()
        given = cls._tt_url_given()
        requested = extension.requested_urls(config)
        urls: dict[BindKey, t.Any] = {}
        settings: dict[BindKey, str] = {}
        for key, engine in own.items():
            if key is None:
                if given:
                    url = requested[None]
                    settings[key] = "database_url (or the TEST_DATABASE_URL environment variable)"
                else:
                    url = cls._tt_url_for(engine.url, key)
                    settings[key] = (
                        f"the app's own {extension.setting(key)} (or set database_url or the "
                        "TEST_DATABASE_URL environment variable)"
                    )
            elif key in cls.binds:
                url = requested[key]
                settings[key] = f"binds[{key!r}]"
            else:
                url = cls._tt_url_for(engine.url, key)
                settings[key] = f"the app's own {extension.setting(key)} (or set binds[{key!r}])"
            value = extension.own_config(key)
            urls[key] = {**value, "url": url} if isinstance(value, dict) else url
        cls._tt_check_urls(urls)
        state.pointed_settings = settings
        pointed = state.pointed = PointedEngines(extension, urls, config)
        logger.info(
            "%s: the engines of %s were built from its own configuration (not from the config the "
            "library hands over); pointed at the test databases for the class: %s",
            cls.__qualname__,
            state.source.name if state.source else app.name,
            ", ".join(
                f"{'default' if k is None else k} -> {mask_url(e.url)}" for k, e in pointed.test.items()
            ),
        )
        return {**config, **url_config(urls)}

    @classmethod
    def _tt_url_given(cls) -> bool:
        """Whether the class names its default database, rather than falling back to a temporary SQLite file."""
        if cls.database_url or os.environ.get(environment.DATABASE_URL):
            return True
        return any(
            getattr(getattr(cls, name), "__func__", None) is not getattr(AppTestCase, name).__func__
            for name in ("get_database_url", "get_app_config")
        )


_BASE_CREATE_APP = AppTestCase.__dict__["create_app"]


def _check_create_app(cls: type, raw: t.Any) -> None:
    """Refuse a ``create_app`` the class setup cannot call, naming the fix."""
    name = cls.__qualname__
    example = (
        "\n\n    @classmethod\n    def create_app(cls, config):\n        return myapp.create_app(config)"
    )
    if inspect.isfunction(raw):
        params = list(inspect.signature(raw).parameters)
        if len(params) <= 1:
            raise ConfigurationError(
                f"{name}.create_app({', '.join(params)}) is an instance method (Flask-Testing's form), but "
                "the app is built once per class, in setUpClass, before any test instance exists: make it "
                "a classmethod that takes the test configuration and applies it before db.init_app(app):"
                f"{example}"
            )
        raise ConfigurationError(
            f"{name}.create_app({', '.join(params)}) is missing @classmethod: the app is built once per "
            f"class, in setUpClass. Add the decorator:{example}"
        )
    if isinstance(raw, classmethod | staticmethod):
        func = raw.__func__
        needed = 2 if isinstance(raw, classmethod) else 1
        try:
            inspect.signature(func).bind(*range(needed))
        except TypeError:
            names = ", ".join(inspect.signature(func).parameters)
            raise ConfigurationError(
                f"{name}.create_app({names}) takes no config: it must take the test configuration "
                "(a dict) and apply it before db.init_app(app), where Flask-SQLAlchemy 3 builds the "
                f"engines:{example}\n\nFor an app built without it, set flask_app = the app (or "
                "'myapp:app') instead: the library then points its engines at the test databases."
            ) from None
        except ValueError:
            return


def _missing_driver(exc: ImportError, who: str) -> MissingDriverError | None:
    """A :class:`MissingDriverError` when ``exc`` is a database driver's import; None for the app's own."""
    driver = DRIVER_MODULES.get((exc.name or "").split(".")[0])
    if driver is None:
        return None  # the app's own import: its traceback says more than any message
    return MissingDriverError(
        f"{who} needs the {driver!r} database driver, which is not installed: {install_hint(driver)}."
    )


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


def _extension_of(app: Flask, cls: type) -> Extension:
    extension = extension_of(app, getattr(cls, "metadata", None))
    if extension is None:
        raise ConfigurationError(
            f"the app built by {cls.__qualname__}.create_app() has no Flask-SQLAlchemy or "
            "Flask-SQLAlchemy-Lite extension: create_app must call db.init_app(app) (or SQLAlchemy(app))."
        )
    return extension


def _urls(config: t.Mapping[str, t.Any]) -> list[t.Any]:
    """Every URL in ``config``, for scrubbing their passwords out of messages."""
    urls = []
    for value in requested_urls(config).values():
        urls.append(value.get("url") if isinstance(value, dict) else value)
    return [u for u in urls if isinstance(u, str | URL)]
