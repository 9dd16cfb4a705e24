"""Pointing an app that already exists (built at import, or by a factory that takes no config) at test databases.

Flask-SQLAlchemy 3 and Flask-SQLAlchemy-Lite build an app's engines in
``db.init_app(app)`` (or ``SQLAlchemy(app)``): for an app built at import,
from the configuration it read then, before any test case could hand it one. :class:`PointedEngines`
builds, per bind, a new engine on the class's test database with the options
the extension itself would use, puts it in the app's engine map in place of
the app's own (which never connect), and sets the URL keys
(``SQLALCHEMY_DATABASE_URI`` and ``SQLALCHEMY_BINDS``, or
``SQLALCHEMY_ENGINES``) and the rest of the class's ``config`` in ``app.config``
for the class. :meth:`PointedEngines.restore` puts back the app's own engines
and configuration after the class.

.. versionadded:: 0.4

.. versionchanged:: 0.5
   Flask-SQLAlchemy-Lite apps too, through :mod:`.extension`.
"""

from __future__ import annotations

import typing as t

from sqlalchemy.engine import Engine

from ._types import BindKey
from .extension import URL_KEYS, Extension

_MISSING = object()


class PointedEngines:
    """An app's engines swapped for engines on the test databases, until :meth:`restore`."""

    def __init__(self, extension: Extension, urls: t.Mapping[BindKey, t.Any], config: t.Mapping[str, t.Any]):
        """Point every engine of the extension's app at ``urls[key]`` (a URL, or engine options with ``url``).

        ``config``: further keys set in ``app.config`` for the class (``TESTING``...).
        """
        app = extension.app
        self.app, self.extension = app, extension
        #: The app's own engines (built at import), put back by :meth:`restore`.
        self.original: dict[BindKey, Engine] = extension.engines()
        #: The engines on the test databases, per bind.
        self.test: dict[BindKey, Engine] = {}
        updates: dict[str, t.Any] = {k: v for k, v in config.items() if k not in URL_KEYS}
        updates.update(extension.url_config(urls))
        self._saved = {k: app.config.get(k, _MISSING) for k in updates}
        try:
            for key, value in urls.items():
                self.test[key] = extension.make_engine(key, value)
        except BaseException:
            self._dispose(self.test.values())
            raise
        app.config.update(updates)
        extension.point(self.test)

    def restore(self, handed_on: t.Container[int] = ()) -> None:
        """Put the app's own engines and configuration back; dispose of the test engines.

        ``handed_on``: ids of test engines something else disposes of or keeps
        for the next class (the connection keeper).
        """
        self.extension.point(self.original)
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
