"""Pointing an app that already exists (built at import, or by a factory that takes no config) at test databases.

Flask-SQLAlchemy 3 builds an app's engines in ``db.init_app(app)`` (or
``SQLAlchemy(app)``): for an app built at import, from the configuration it
read then, before any test case could hand it one. :class:`PointedEngines`
builds, per bind, a new engine on the class's test database with the options
the extension itself would use, puts it in the app's engine map in place of
the app's own (which never connect), and sets ``SQLALCHEMY_DATABASE_URI``,
``SQLALCHEMY_BINDS`` and the rest of the class's ``config`` in ``app.config``
for the class. :meth:`PointedEngines.restore` puts back the app's own engines
and configuration after the class.

.. versionadded:: 0.4
"""

from __future__ import annotations

import typing as t

from flask import Flask
from sqlalchemy.engine import Engine

from ._compat import app_engine_map, make_app_engine
from ._types import BindKey
from .errors import ConfigurationError

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

_MISSING = object()


class PointedEngines:
    """An app's engines swapped for engines on the test databases, until :meth:`restore`."""

    def __init__(
        self, app: Flask, db: SQLAlchemy, urls: t.Mapping[BindKey, t.Any], config: t.Mapping[str, t.Any]
    ):
        """Point every engine of ``app`` at ``urls[key]`` (a URL, or engine options with ``url``).

        ``config``: further keys set in ``app.config`` for the class (``TESTING``...).
        """
        engines = app_engine_map(db, app)
        if engines is None:
            raise ConfigurationError(
                f"the app {app.name!r} is not registered with its Flask-SQLAlchemy extension "
                "(db.init_app(app) was not called for it)."
            )
        self.app, self.db = app, db
        self._engines = engines
        #: The app's own engines (built at import), put back by :meth:`restore`.
        self.original: dict[BindKey, Engine] = dict(engines)
        #: The engines on the test databases, per bind.
        self.test: dict[BindKey, Engine] = {}
        binds = dict(app.config.get("SQLALCHEMY_BINDS") or {})
        updates: dict[str, t.Any] = {k: v for k, v in config.items() if k not in _URL_KEYS}
        for key, value in urls.items():
            if key is None:
                updates["SQLALCHEMY_DATABASE_URI"] = value
            else:
                binds[key] = value
        if binds:
            updates["SQLALCHEMY_BINDS"] = binds
        self._saved = {k: app.config.get(k, _MISSING) for k in updates}
        try:
            for key, value in urls.items():
                self.test[key] = make_app_engine(db, app, key, value)
        except BaseException:
            self._dispose(self.test.values())
            raise
        app.config.update(updates)
        engines.update(self.test)

    def restore(self, handed_on: t.Container[int] = ()) -> None:
        """Put the app's own engines and configuration back; dispose of the test engines.

        ``handed_on``: ids of test engines something else disposes of or keeps
        for the next class (the connection keeper).
        """
        self._engines.clear()
        self._engines.update(self.original)
        for key, value in self._saved.items():
            if value is _MISSING:
                self.app.config.pop(key, None)
            else:
                self.app.config[key] = value
        self._saved = {}
        test, self.test = self.test, {}
        self._dispose(e for e in test.values() if id(e) not in handed_on)

    @staticmethod
    def _dispose(engines: t.Iterable[Engine]) -> None:
        for engine in engines:
            engine.dispose()


_URL_KEYS = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS")
