"""Run a test module again with its apps swapped for their Flask-SQLAlchemy-Lite twins.

The isolation tests and the state machine are written against the shop app's
module-level names (``db``, ``Customer``, ``shop.session``...) and the few
helpers where the two extensions differ (``shop.current_session()``,
``shop.end_session()``, ``shop.engine(key)``). :func:`run_again` executes a
module's code a second time as another module, with ``from tests.apps import
shop`` (and the apps built on it) answered by their twins: the very same test
bodies then drive a Flask-SQLAlchemy-Lite app, on every backend, and a test
that only Flask-SQLAlchemy can pass says so with ``@shop.flask_sqlalchemy_only``.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import types
import typing as t

#: The app modules that have a Flask-SQLAlchemy-Lite twin, and their twins.
LITE_TWINS = {
    "tests.apps.shop": "tests.apps.shop_lite",
    "tests.apps.isolation_app": "tests.apps.isolation_app_lite",
    "tests.apps.model_app": "tests.apps.model_app_lite",
}


def run_again(source: str, namespace: dict[str, t.Any], twins: t.Mapping[str, str] = LITE_TWINS) -> None:
    """Execute module ``source``'s code in ``namespace`` (a module's globals), its imports of ``twins`` swapped."""
    spec = importlib.util.find_spec(source)
    assert spec is not None and spec.loader is not None and spec.origin is not None, source
    code = spec.loader.get_code(source)  # type: ignore[attr-defined]
    namespace["__builtins__"] = {**vars(builtins), "__import__": _importer(twins)}
    exec(code, namespace)


def _importer(twins: t.Mapping[str, str]) -> t.Callable[..., t.Any]:
    real = builtins.__import__

    def import_(
        name: str,
        globals: t.Mapping[str, t.Any] | None = None,
        locals: t.Mapping[str, t.Any] | None = None,
        fromlist: t.Sequence[str] = (),
        level: int = 0,
    ) -> t.Any:
        if level == 0 and fromlist:
            if name in twins:  # from tests.apps.shop import X
                return importlib.import_module(twins[name])
            swapped = {f"{name}.{n}" for n in fromlist} & twins.keys()
            if swapped:  # from tests.apps import shop, ...
                package = real(name, globals, locals, fromlist, level)
                return types.SimpleNamespace(
                    **{
                        n: importlib.import_module(twins[f"{name}.{n}"])
                        if f"{name}.{n}" in twins
                        else getattr(package, n)
                        for n in fromlist
                    }
                )
        return real(name, globals, locals, fromlist, level)

    return import_
