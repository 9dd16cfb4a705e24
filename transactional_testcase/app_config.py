"""Handing the test configuration to factories that take a config class or a config name.

``create_app(cls, config)`` gets ``config`` as a plain dict. A factory of the
Flask book's shape takes a config *name* (``create_app('testing')``, looked up
in a dict of config classes) or a config *class* (``app.config.from_object``):

* :func:`config_class` makes a config class from the app's base config class
  with the test configuration on top;
* :func:`registered_config` registers such a class under a new name in the
  app's dict of configs for the time the factory runs, and gives the name.

Either way the test URLs are in place before the factory's ``db.init_app(app)``;
``app.config.update(config)`` after the factory returns is too late for
Flask-SQLAlchemy 3, which builds its engines in ``init_app``.

.. versionadded:: 0.4
"""

from __future__ import annotations

import contextlib
import itertools
import typing as t

from .errors import ConfigurationError

__all__ = ["config_class", "registered_config"]

_counter = itertools.count(1)


def config_class(base: type | None, config: t.Mapping[str, t.Any], name: str | None = None) -> type:
    """A subclass of ``base`` (a config class) whose upper-case attributes ``config`` overrides.

    For factories that take a config class (``app.config.from_object(cls)``)::

        @classmethod
        def create_app(cls, config):
            return myapp.create_app(config_class(myapp.TestingConfig, config))

    Everything else of ``base`` (other settings, an ``init_app`` static method)
    is inherited. ``base`` None gives a class with ``config`` alone. Keys that
    are not upper case are left out, as ``from_object`` would ignore them.
    """
    if base is not None and not isinstance(base, type):
        raise ConfigurationError(
            f"config_class() needs a config class as its base, not {type(base).__name__} {base!r:.60}."
        )
    bases: tuple[type, ...] = (base,) if base is not None else (object,)
    attributes: dict[str, t.Any] = {k: v for k, v in config.items() if k.isupper()}
    attributes["__module__"] = base.__module__ if base is not None else __name__
    attributes["__doc__"] = f"{base.__qualname__ if base else 'A config'} with the test configuration."
    return type(name or f"{base.__name__ if base else 'Config'}WithTestDatabases", bases, attributes)


@contextlib.contextmanager
def registered_config(
    registry: t.MutableMapping[str, t.Any], base: str, config: t.Mapping[str, t.Any]
) -> t.Iterator[str]:
    """Register ``config_class(registry[base], config)`` under a new name while the block runs.

    For factories that take a config name and look it up in a dict of config
    classes (the Flask book's ``config = {'testing': TestingConfig, ...}``)::

        @classmethod
        def create_app(cls, config):
            with registered_config(myapp.config.config, "testing", config) as name:
                return myapp.create_app(name)

    The name is removed from ``registry`` when the block ends: a factory reads
    its config while it runs.
    """
    if base not in registry:
        known = ", ".join(map(repr, sorted(map(str, registry)))) or "none"
        raise ConfigurationError(
            f"registered_config(): the registry has no config named {base!r} (it has {known})."
        )
    value = registry[base]
    name = f"{base}_transactional_testcase_{next(_counter)}"
    registry[name] = (
        {**value, **config} if isinstance(value, t.Mapping) else config_class(value, config, None)
    )
    try:
        yield name
    finally:
        registry.pop(name, None)
