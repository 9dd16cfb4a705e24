"""Where a test case's app comes from, when the class defines no ``create_app``.

:func:`named` reads the class's :attr:`~transactional_testcase.app_testcase.AppTestCase.flask_app`
(an app, a factory, or an import path such as ``"myapp:app"``); :func:`discover`
finds the app as the ``flask`` command does:

1. the ``FLASK_APP`` environment variable (read from ``.env`` or ``.flaskenv``
   in the working directory too, when python-dotenv is installed, as ``flask``
   reads them); else ``wsgi.py``, then ``app.py``, in the working directory;
2. in that module (or at the ``module:name`` it names): an app called ``app``
   or ``application``; else the module's one Flask app; else a factory called
   ``create_app`` or ``make_app``. ``module:create_app('testing')`` calls the
   factory with those literal arguments.

What is found is an :class:`AppSource`: a factory that takes a parameter (the
tutorial's ``create_app(test_config=None)``) is handed the test configuration;
an app object, a factory called without arguments or with arguments of its own
builds engines from its own configuration, which the library then points at
the test databases (see :mod:`transactional_testcase.app_engines`).

The rules are Flask's (``flask.cli.find_best_app`` and ``locate_app``); the code
is this library's: it reports one :class:`~transactional_testcase.ConfigurationError`
that says what was looked for, instead of Flask's ``NoAppException``.

.. versionadded:: 0.4
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import os
import sys
import types
import typing as t

from flask import Flask

from .errors import ConfigurationError

#: The environment variable the ``flask`` command reads the app's import path from.
FLASK_APP = "FLASK_APP"
#: Modules tried in the working directory when ``FLASK_APP`` is not set, in order.
DEFAULT_FILES = ("wsgi.py", "app.py")
#: Names of an app object, then of a factory, tried in a module, in order.
APP_NAMES = ("app", "application")
FACTORY_NAMES = ("create_app", "make_app")

#: How to name an app, for the errors.
HOW_TO_NAME = (
    "name it on the class with flask_app = 'myapp:create_app' (a factory), "
    "flask_app = 'myapp:app' (an app built at import) or flask_app = the app object; "
    "or set FLASK_APP=myapp as for 'flask run'; or define the classmethod "
    "create_app(cls, config) that returns the app built from config"
)


@dataclasses.dataclass(frozen=True)
class AppSource:
    """How a class gets its app: a factory to call, or an app that already exists."""

    #: How messages name it: ``flaskr:create_app``, ``myapp:app``, ``ShopTests.create_app``.
    name: str
    #: Where it was named or found: ``FLASK_APP=flaskr``, ``ShopTests.flask_app``... ("" for create_app).
    found: str
    #: The factory, or None for an app object.
    factory: t.Callable[..., t.Any] | None = None
    #: The app object (when there is no factory).
    app: Flask | None = None
    #: Whether the factory is handed the test configuration (a dict).
    takes_config: bool = False
    #: The factory's own arguments (``FLASK_APP=myapp:create_app('testing')``).
    args: tuple[t.Any, ...] = ()

    @property
    def identity(self) -> t.Hashable:
        """The same for two classes that get the same app (for handing engines on)."""
        return (self.factory if self.factory is not None else self.app, self.args)

    @property
    def call(self) -> str:
        """How the call is shown in messages: ``flaskr:create_app(config)``, ``myapp:app``."""
        if self.factory is None:
            return self.name
        if self.takes_config:
            return f"{self.name}(config)"
        return f"{self.name}({', '.join(map(repr, self.args))})"

    def describe(self) -> str:
        """One phrase for the log: what was used and where it came from."""
        if self.factory is None:
            what = f"the app {self.name}"
        elif self.takes_config:
            what = f"the factory {self.call}, handed the test configuration"
        else:
            what = f"the factory {self.call}"
        return f"{what} ({self.found})" if self.found else what

    def build(self, config: dict[str, t.Any]) -> t.Any:
        """The app: the object itself, or what the factory returns."""
        if self.factory is None:
            return self.app
        if self.takes_config:
            return self.factory(config)
        return self.factory(*self.args)


def from_object(value: t.Any, name: str, found: str) -> AppSource:
    """An :class:`AppSource` for ``value``: a Flask app, or a factory (see :func:`takes_config`)."""
    if isinstance(value, Flask):
        return AppSource(name=name, found=found, app=value)
    if callable(value) and not isinstance(value, type):
        return AppSource(name=name, found=found, factory=value, takes_config=takes_config(value, name, found))
    raise ConfigurationError(
        f"{found} names {name}, which is {type(value).__name__!s} {value!r:.80}, neither a Flask app "
        f"nor a factory that returns one: {HOW_TO_NAME}."
    )


def takes_config(factory: t.Callable[..., t.Any], name: str, found: str) -> bool:
    """Whether ``factory`` is called with the test configuration (it takes one positional argument).

    A factory that takes none is called without; one that needs more than one
    cannot be called (Flask refuses it too).
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: assume Flask's way
        return False
    positional = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    required = [p for p in positional if p.default is p.empty and p.kind is not p.VAR_POSITIONAL]
    if len(required) > 1:
        raise ConfigurationError(
            f"{found} names the factory {name}{signature}, which needs {len(required)} arguments: "
            "the library can hand a factory one, the test configuration (a dict). Define the "
            "classmethod create_app(cls, config) that calls it with what it needs."
        )
    return bool(positional)


def named(value: t.Any, owner: str) -> AppSource:
    """The :class:`AppSource` of a class's ``flask_app``: an app, a factory or an import path."""
    found = f"{owner}.flask_app"
    if isinstance(value, str):
        return locate(value, found)
    name = getattr(value, "__qualname__", None) or getattr(value, "name", None) or repr(value)
    module = getattr(value, "__module__", None)
    if isinstance(value, Flask):
        name = f"the Flask app {value.name!r}"
    elif module:
        name = f"{module}:{name}"
    return from_object(value, name, found)


def locate(spec: str, found: str, search: str | None = None) -> AppSource:
    """The app at ``spec`` (``module``, ``module:name``, ``module:factory(args)``, ``path/to/app.py``).

    ``search``: the folder a path is relative to (the working directory).
    """
    module_part, _, attribute = spec.strip().partition(":")
    module_name = _module_name(module_part, search or os.getcwd(), found)
    module = _import(module_name, spec, found)
    if attribute:
        return _attribute(module, module_name, attribute.strip(), found)
    return best(module, module_name, found)


def best(module: types.ModuleType, module_name: str, found: str) -> AppSource:
    """The app of ``module``, found as ``flask.cli.find_best_app`` finds it."""
    for attr in APP_NAMES:
        if isinstance(getattr(module, attr, None), Flask):
            return AppSource(name=f"{module_name}:{attr}", found=found, app=getattr(module, attr))
    apps = {n: v for n, v in vars(module).items() if isinstance(v, Flask)}
    if len(apps) == 1:
        (attr, app), *_ = apps.items()
        return AppSource(name=f"{module_name}:{attr}", found=found, app=app)
    if len(apps) > 1:
        raise ConfigurationError(
            f"{found}: the module {module_name} holds several Flask apps "
            f"({', '.join(sorted(apps))}) and none is called app or application: name the one to "
            f"test, e.g. {module_name}:{sorted(apps)[0]}."
        )
    for attr in FACTORY_NAMES:
        factory = getattr(module, attr, None)
        if inspect.isfunction(factory) or inspect.ismethod(factory):
            return from_object(factory, f"{module_name}:{attr}", found)
    where = getattr(module, "__file__", None) or module_name
    raise ConfigurationError(
        f"{found}: the module {module_name} ({where}) has no app: looked for a Flask app called "
        f"{' or '.join(APP_NAMES)}, any one Flask app, and a factory called "
        f"{' or '.join(FACTORY_NAMES)}. Name it: {HOW_TO_NAME}."
    )


def discover(owner: str, cwd: str | None = None) -> AppSource:
    """The app the ``flask`` command would run from ``cwd``; a :class:`ConfigurationError` if none."""
    cwd = cwd or os.getcwd()
    spec, origin = os.environ.get(FLASK_APP), f"{FLASK_APP}"
    if not spec:
        spec, origin = _from_dotenv(cwd)
    if spec:
        return locate(spec, f"{origin}={spec}", cwd)
    for filename in DEFAULT_FILES:
        path = os.path.join(cwd, filename)
        if os.path.isfile(path):
            return locate(path, f"{filename} in {cwd}", cwd)
    raise ConfigurationError(
        f"{owner} names no app: it defines no classmethod create_app(cls, config) and no flask_app, "
        f"{FLASK_APP} is not set, and there is no {' or '.join(DEFAULT_FILES)} in {cwd}. To test an app, "
        f"{HOW_TO_NAME}."
    )


def _from_dotenv(cwd: str) -> tuple[str | None, str]:
    """``FLASK_APP`` from ``.env`` or ``.flaskenv`` in ``cwd``, as ``flask`` reads them (python-dotenv)."""
    try:
        from dotenv import dotenv_values  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None, FLASK_APP
    for filename in (".env", ".flaskenv"):  # .env wins: flask loads it first, without override
        path = os.path.join(cwd, filename)
        if os.path.isfile(path):
            value = dotenv_values(path).get(FLASK_APP)
            if value:
                return value, f"{FLASK_APP} (in {filename})"
    return None, FLASK_APP


def _module_name(part: str, cwd: str, found: str) -> str:
    """The importable name of ``part``: a dotted name as is, a file path made importable.

    For a path (``app.py``, ``src/myapp/__init__.py``) the folder above its
    outermost package is put first on ``sys.path``, as ``flask`` does.
    """
    if not (part.endswith(".py") or os.sep in part or "/" in part):
        if cwd not in sys.path and os.path.abspath(cwd) not in map(os.path.abspath, sys.path):
            sys.path.insert(0, cwd)  # 'python -m unittest' has it; pytest's rootdir may not
        return part
    path = os.path.realpath(os.path.join(cwd, part))
    if not os.path.exists(path):
        raise ConfigurationError(
            f"{found}: {path} does not exist. {HOW_TO_NAME[0].upper()}{HOW_TO_NAME[1:]}."
        )
    stem, ext = os.path.splitext(path)
    if ext == ".py":
        path = stem
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    names = []
    while True:
        path, name = os.path.split(path)
        names.append(name)
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            break
    if path not in sys.path:
        sys.path.insert(0, path)
    return ".".join(reversed(names))


def _import(module_name: str, spec: str, found: str) -> types.ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ConfigurationError(
                f"{found}: no module named {missing!r} can be imported from {os.getcwd()} "
                f"(sys.path[0] is {sys.path[0] or '.'!r}). {HOW_TO_NAME[0].upper()}{HOW_TO_NAME[1:]}."
            ) from None
        raise  # the app's own import failed: its traceback says more


def _attribute(module: types.ModuleType, module_name: str, attribute: str, found: str) -> AppSource:
    """``module:name`` or ``module:factory(literal, args)``."""
    try:
        expr = ast.parse(attribute, mode="eval").body
    except SyntaxError:
        raise ConfigurationError(
            f"{found}: {attribute!r} is not a name or a call of one with literal arguments."
        ) from None
    args: tuple[t.Any, ...] = ()
    called = isinstance(expr, ast.Call)
    if isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name) or expr.keywords:
            raise ConfigurationError(
                f"{found}: {attribute!r} must be a factory's name called with positional literal arguments."
            )
        try:
            args = tuple(ast.literal_eval(a) for a in expr.args)
        except ValueError:
            raise ConfigurationError(f"{found}: the arguments in {attribute!r} must be literals.") from None
        expr = expr.func
    if not isinstance(expr, ast.Name):
        raise ConfigurationError(f"{found}: {attribute!r} is not a name in {module_name}.")
    if not hasattr(module, expr.id):
        raise ConfigurationError(
            f"{found}: the module {module_name} has no {expr.id!r}. {HOW_TO_NAME[0].upper()}{HOW_TO_NAME[1:]}."
        )
    value = getattr(module, expr.id)
    name = f"{module_name}:{expr.id}"
    if called:
        if isinstance(value, Flask) or not callable(value):
            raise ConfigurationError(f"{found}: {name} is not a factory: it cannot be called.")
        return AppSource(name=name, found=found, factory=value, args=args)
    return from_object(value, name, found)
