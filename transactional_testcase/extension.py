"""What the library needs of an app's SQLAlchemy extension, one class per extension.

Two extensions keep a Flask app's engines and sessions:

* Flask-SQLAlchemy (``db.engines`` keyed ``None`` and bind keys,
  ``db.session`` a scoped session, ``db.metadatas``, ``db.create_all()``);
* Flask-SQLAlchemy-Lite (``db.engines`` keyed ``"default"`` and engine names,
  ``db.session`` one session per app context from a per-app
  ``db.sessionmaker``, and no models of its own).

Both register as ``app.extensions["sqlalchemy"]``. The rest of the library
talks to an :class:`Extension`: engines keyed by :data:`~._types.BindKey`
(``None`` is the default engine for both), pointing them elsewhere, the
current session, the models' metadata, and the configuration keys that
name the databases. What either extension keeps privately is reached in
:mod:`._compat` only.

.. versionadded:: 0.5
"""

from __future__ import annotations

import abc
import logging
import typing as t

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, sessionmaker

from . import _compat
from ._types import BindKey
from .errors import ConfigurationError

logger = logging.getLogger("transactional_testcase")

#: What a class's ``metadata`` setting may hold: one ``MetaData`` (the default
#: engine's), a sequence of them, or those per bind key.
MetadataSetting = sa.MetaData | t.Sequence[sa.MetaData] | t.Mapping[BindKey, t.Any] | None

#: Both extensions' configuration keys naming databases: the config handed to
#: ``create_app`` holds both forms of the same URLs, so a factory works
#: whichever extension it initialises.
URI_KEY = "SQLALCHEMY_DATABASE_URI"
BINDS_KEY = "SQLALCHEMY_BINDS"
ENGINES_KEY = "SQLALCHEMY_ENGINES"
URL_KEYS = (URI_KEY, BINDS_KEY, ENGINES_KEY)
#: Flask-SQLAlchemy-Lite's async engines: not provisioned, not isolated.
ASYNC_ENGINES_KEY = "SQLALCHEMY_ASYNC_ENGINES"


class Extension(abc.ABC):
    """One app's registration with its SQLAlchemy extension."""

    #: The extension's name, for messages.
    name: t.ClassVar[str]
    #: The configuration keys that decide how its engines are built.
    engine_settings: t.ClassVar[tuple[str, ...]]

    def __init__(self, db: t.Any, app: Flask) -> None:
        #: The extension object (``db``).
        self.db = db
        self.app = app

    # -- engines ---------------------------------------------------------------------

    @abc.abstractmethod
    def _engine_map(self) -> dict[t.Any, Engine]:
        """The extension's own engine dict for :attr:`app`, keyed its way (written by :meth:`point`)."""

    @classmethod
    def _name(cls, key: BindKey) -> t.Any:
        """The extension's key of bind ``key``."""
        return key

    @classmethod
    def _key(cls, name: t.Any) -> BindKey:
        """The bind key of the extension's key ``name``."""
        return t.cast(BindKey, name)

    def engines(self) -> dict[BindKey, Engine]:
        """The app's current engines per bind key (``None``: the default engine)."""
        return {self._key(name): engine for name, engine in self._engine_map().items()}

    def point(self, engines: t.Mapping[BindKey, Engine]) -> None:
        """Make the app use ``engines`` in place of its current ones, for the binds given."""
        live = self._engine_map()
        for key, engine in engines.items():
            live[self._name(key)] = engine

    # -- sessions --------------------------------------------------------------------

    @abc.abstractmethod
    def session_factory(self) -> sessionmaker[t.Any]:
        """The ``sessionmaker`` the app's ``db.session`` comes from."""

    @abc.abstractmethod
    def session(self) -> Session:
        """The session ``db.session`` is in the current app context."""

    @abc.abstractmethod
    def remove_session(self) -> None:
        """End the current app context's ``db.session`` (the next use starts a new one)."""

    # -- models ----------------------------------------------------------------------

    @abc.abstractmethod
    def metadatas(self) -> dict[BindKey, tuple[sa.MetaData, ...]]:
        """The models' metadata per bind key; empty when unknown."""

    def create_all(self, engines: t.Mapping[BindKey, Engine], owner: str) -> None:
        """Create every model's table on ``engines`` (``db.create_all()``)."""
        metadatas = self.metadatas()
        if not metadatas:
            raise ConfigurationError(
                f"{owner} builds its schema with create_all() (alembic_config = False), but "
                f"{self.name} keeps no models: set metadata = Base.metadata on the class "
                "(the MetaData of your declarative base), or {bind: MetaData} for several engines."
            )
        for key, found in metadatas.items():
            engine = engines.get(key)
            if engine is None:
                raise ConfigurationError(
                    f"{owner}.metadata names the {_bind(key)} engine, which the app does not have."
                )
            for metadata in found:
                metadata.create_all(engine)

    def create_all_name(self) -> str:
        """How the create_all schema is described in logs."""
        return "db.create_all()"

    # -- configuration ---------------------------------------------------------------

    @abc.abstractmethod
    def setting(self, key: BindKey) -> str:
        """The configuration entry of bind ``key``'s database (``SQLALCHEMY_BINDS['users']``)."""

    @abc.abstractmethod
    def config_key(self, key: BindKey) -> str:
        """Where the config handed to ``create_app`` names bind ``key``'s database."""

    @classmethod
    @abc.abstractmethod
    def requested_urls(cls, config: t.Mapping[str, t.Any]) -> dict[BindKey, t.Any]:
        """Per bind key, what ``config`` asks this extension for: a URL, or engine options with ``url``."""

    @abc.abstractmethod
    def own_config(self, key: BindKey) -> t.Any:
        """What the app's own configuration says for bind ``key`` (None if nothing)."""

    def unisolated_urls(self) -> dict[str, URL]:
        """The URLs of the app's engines the library neither provisions nor isolates, by their setting.

        .. versionadded:: 0.6
        """
        return {}

    @abc.abstractmethod
    def url_config(self, urls: t.Mapping[BindKey, t.Any]) -> dict[str, t.Any]:
        """The configuration keys that make the extension use ``urls`` (per bind key)."""

    @abc.abstractmethod
    def make_engine(self, key: BindKey, value: t.Any) -> Engine:
        """A new engine for bind ``key``, built as the extension builds the app's (nothing connects)."""


class FlaskSQLAlchemy(Extension):
    """Flask-SQLAlchemy 3: ``db.engines`` keyed ``None`` and bind keys, models on ``db.metadatas``."""

    name = "Flask-SQLAlchemy"
    engine_settings = (
        "SQLALCHEMY_ENGINE_OPTIONS",
        BINDS_KEY,
        URI_KEY,
        "SQLALCHEMY_ECHO",
        "SQLALCHEMY_RECORD_QUERIES",
    )

    def _engine_map(self) -> dict[t.Any, Engine]:
        engines = _compat.app_engine_map(self.db, self.app)
        if engines is None:
            raise ConfigurationError(_not_registered(self.app, self.name))
        return engines

    def session_factory(self) -> sessionmaker[t.Any]:
        return t.cast("sessionmaker[t.Any]", self.db.session.session_factory)

    def session(self) -> Session:
        return t.cast(Session, self.db.session())

    def remove_session(self) -> None:
        self.db.session.remove()

    def metadatas(self) -> dict[BindKey, tuple[sa.MetaData, ...]]:
        return {key: (metadata,) for key, metadata in self.db.metadatas.items()}

    def create_all(self, engines: t.Mapping[BindKey, Engine], owner: str) -> None:
        self.db.create_all()  # on db.engines, which are ``engines`` while it runs

    def setting(self, key: BindKey) -> str:
        return URI_KEY if key is None else f"{BINDS_KEY}[{key!r}]"

    def config_key(self, key: BindKey) -> str:
        return f"config[{URI_KEY!r}]" if key is None else f"config[{BINDS_KEY!r}][{key!r}]"

    @classmethod
    def requested_urls(cls, config: t.Mapping[str, t.Any]) -> dict[BindKey, t.Any]:
        return {None: config[URI_KEY], **config.get(BINDS_KEY, {})}

    def own_config(self, key: BindKey) -> t.Any:
        if key is None:
            return self.app.config.get(URI_KEY)
        return (self.app.config.get(BINDS_KEY) or {}).get(key)

    def url_config(self, urls: t.Mapping[BindKey, t.Any]) -> dict[str, t.Any]:
        config: dict[str, t.Any] = {}
        if None in urls:
            config[URI_KEY] = urls[None]
        binds = {k: v for k, v in urls.items() if k is not None}
        if binds:
            config[BINDS_KEY] = {**(self.app.config.get(BINDS_KEY) or {}), **binds}
        return config

    def make_engine(self, key: BindKey, value: t.Any) -> Engine:
        return _compat.make_app_engine(self.db, self.app, key, value)


class FlaskSQLAlchemyLite(Extension):
    """Flask-SQLAlchemy-Lite: ``db.engines`` keyed by engine name, ``"default"`` first.

    Its ``sessionmaker`` holds the engines themselves (``bind``, and ``binds``
    for models bound to other engines): pointing the app elsewhere repoints
    those too. It keeps no models: their metadata is the class's
    ``metadata`` setting, else Flask-Alembic's ``metadatas`` when the app
    registers it. Its async engines and sessions are left as they are.
    """

    name = "Flask-SQLAlchemy-Lite"
    engine_settings = (ENGINES_KEY,)
    #: The name of the default engine.
    DEFAULT = "default"

    def __init__(self, db: t.Any, app: Flask, metadata: MetadataSetting = None) -> None:
        super().__init__(db, app)
        self._metadata = metadata
        try:
            _compat.lite_state(db, app)
        except KeyError:
            raise ConfigurationError(_not_registered(app, self.name)) from None
        try:
            repaired = _compat.repair_lite_binds(db, app)
        except KeyError as exc:
            raise ConfigurationError(
                f"the app's sessionmaker binds {exc.args[0]} to an engine of another app: "
                "Flask-SQLAlchemy-Lite gives every app after the first the first app's engines for "
                "session_options['binds'] (pallets-eco/flask-sqlalchemy-lite#41), and that engine's "
                "name is unknown. Bind the models in the factory instead: "
                "db.sessionmaker.configure(binds={Model: db.get_engine('name')}) inside app.app_context()."
            ) from None
        if repaired:
            logger.debug(
                "%s: the sessionmaker's binds held another app's engines (pallets-eco/flask-sqlalchemy-lite#41);"
                " given this app's: %s",
                app.name,
                ", ".join(repaired),
            )

    @classmethod
    def _name(cls, key: BindKey) -> t.Any:
        return cls.DEFAULT if key is None else key

    @classmethod
    def _key(cls, name: t.Any) -> BindKey:
        return None if name == cls.DEFAULT else t.cast(BindKey, name)

    def _engine_map(self) -> dict[t.Any, Engine]:
        engines: dict[t.Any, Engine] = _compat.lite_state(self.db, self.app).engines
        return engines

    def unisolated_urls(self) -> dict[str, URL]:
        """Its async engines (``SQLALCHEMY_ASYNC_ENGINES``): their sessions are left as they are."""
        engines = _compat.lite_async_engines(self.db, self.app)
        return {f"{ASYNC_ENGINES_KEY}[{name!r}]": engine.url for name, engine in engines.items()}

    def point(self, engines: t.Mapping[BindKey, Engine]) -> None:
        live = self._engine_map()
        replaced: dict[int, Engine] = {}
        for key, engine in engines.items():
            old = live.get(self._name(key))
            if old is not None:
                replaced[id(old)] = engine
            live[self._name(key)] = engine
        kw = self.session_factory().kw
        if kw.get("bind") is not None:
            kw["bind"] = replaced.get(id(kw["bind"]), kw["bind"])
        if kw.get("binds"):
            kw["binds"] = {model: replaced.get(id(bind), bind) for model, bind in kw["binds"].items()}

    def session_factory(self) -> sessionmaker[t.Any]:
        factory: sessionmaker[t.Any] = _compat.lite_state(self.db, self.app).sessionmaker
        return factory

    def session(self) -> Session:
        return t.cast(Session, self.db.session)

    def remove_session(self) -> None:
        _compat.close_lite_sessions()

    def metadatas(self) -> dict[BindKey, tuple[sa.MetaData, ...]]:
        setting = self._metadata
        if setting is None:
            alembic = self.app.extensions.get("alembic")
            setting = getattr(alembic, "metadatas", None) or None
        if setting is None:
            return {}
        if isinstance(setting, sa.MetaData) or _is_sequence(setting):
            setting = {None: setting}
        found: dict[BindKey, tuple[sa.MetaData, ...]] = {}
        for name, value in t.cast(t.Mapping[t.Any, t.Any], setting).items():
            found[self._key(name)] = (value,) if isinstance(value, sa.MetaData) else tuple(value)
        return found

    def create_all_name(self) -> str:
        return "metadata.create_all()"

    def setting(self, key: BindKey) -> str:
        return f"{ENGINES_KEY}[{self._name(key)!r}]"

    def config_key(self, key: BindKey) -> str:
        return f"config[{ENGINES_KEY!r}][{self._name(key)!r}]"

    @classmethod
    def requested_urls(cls, config: t.Mapping[str, t.Any]) -> dict[BindKey, t.Any]:
        return {cls._key(name): value for name, value in (config.get(ENGINES_KEY) or {}).items()}

    def own_config(self, key: BindKey) -> t.Any:
        return (self.app.config.get(ENGINES_KEY) or {}).get(self._name(key))

    def url_config(self, urls: t.Mapping[BindKey, t.Any]) -> dict[str, t.Any]:
        engines = dict(self.app.config.get(ENGINES_KEY) or {})
        engines.update({self._name(k): v for k, v in urls.items()})
        return {ENGINES_KEY: engines}

    def make_engine(self, key: BindKey, value: t.Any) -> Engine:
        return _compat.make_lite_engine(self.db, self.app, self._name(key), value)


def url_config(urls: t.Mapping[BindKey, t.Any]) -> dict[str, t.Any]:
    """The configuration naming ``urls`` in both extensions' keys (the ``config`` of ``create_app``)."""
    config: dict[str, t.Any] = {URI_KEY: urls[None]}
    binds = {k: v for k, v in urls.items() if k is not None}
    if binds:
        config[BINDS_KEY] = binds
    config[ENGINES_KEY] = {FlaskSQLAlchemyLite._name(k): v for k, v in urls.items()}
    return config


def requested_urls(config: t.Mapping[str, t.Any]) -> dict[BindKey, t.Any]:
    """Per bind key, what ``config`` asks for, read before the app (and its extension) is known.

    Flask-SQLAlchemy's keys when ``config`` has them, else Flask-SQLAlchemy-Lite's.
    """
    if URI_KEY in config or ENGINES_KEY not in config:
        return FlaskSQLAlchemy.requested_urls(config)
    return FlaskSQLAlchemyLite.requested_urls(config)


def extension_of(app: Flask, metadata: MetadataSetting = None) -> Extension | None:
    """The app's SQLAlchemy extension, or None if it registered none the library knows."""
    db = app.extensions.get("sqlalchemy")
    if db is None:
        return None
    module = type(db).__module__.split(".")[0]
    if module == "flask_sqlalchemy_lite":
        return FlaskSQLAlchemyLite(db, app, metadata)
    if hasattr(db, "metadatas") and hasattr(db, "session"):
        return FlaskSQLAlchemy(db, app)
    return None


def _is_sequence(value: t.Any) -> bool:
    return isinstance(value, list | tuple)


def _bind(key: BindKey) -> str:
    return "default" if key is None else repr(key)


def _not_registered(app: Flask, name: str) -> str:
    return f"the app {app.name!r} is not registered with its {name} extension (db.init_app(app) was not called for it)."
