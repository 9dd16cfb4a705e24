"""Request assertions for Flask test-client responses, templates and flashed messages.

What Flask-Testing's ``TestCase`` offered, written for Flask 3 and Werkzeug 3:

* ``Location`` headers are relative since Werkzeug 2.1; :meth:`assertRedirects`
  resolves both sides against the request URL, so ``"/x"`` and
  ``"http://localhost/x"`` are the same location, and it understands responses
  made with ``follow_redirects=True``.
* ``flask.templating._render`` changed its signature in Flask 2.2, which broke
  Flask-Testing's ``render_templates = False``. Here templates are recorded
  through the public ``template_rendered`` signal; ``render_templates = False``
  swaps the app's Jinja template class instead of patching Flask.

The signal receivers are connected once per class, for the class's own app
only (``_ra_setup_class``), and the recordings are cleared before each test
(``_ra_reset``), so thousands of tests pay nothing for the feature.
"""

from __future__ import annotations

import json
import typing as t
import unittest
from http import HTTPStatus
from urllib.parse import urljoin, urlsplit, urlunsplit

import jinja2
from flask import Flask, message_flashed, template_rendered
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response

from .errors import ConfigurationError

__all__ = [
    "REDIRECT_CODES",
    "FlashedMessage",
    "RenderedTemplate",
    "RequestAssertionsMixin",
]

#: Status codes :meth:`RequestAssertionsMixin.assertRedirects` accepts by default.
REDIRECT_CODES: frozenset[int] = frozenset({301, 302, 303, 307, 308})

#: How much of a response body failure messages show.
BODY_PREVIEW_CHARS = 300

if t.TYPE_CHECKING:
    _TestCaseBase = unittest.TestCase
else:
    _TestCaseBase = object


class RenderedTemplate(t.NamedTuple):
    """One ``render_template``/``stream_template`` call seen in the current test."""

    #: The template's name (``None`` for ``render_template_string``).
    name: str | None
    template: jinja2.Template
    #: A shallow copy of the context the template got, context processors included.
    context: dict[str, t.Any]


class FlashedMessage(t.NamedTuple):
    """One ``flash()`` call seen in the current test."""

    message: str
    category: str


class RequestRecorder:
    """Receives the app's signals for one test case class: the templates it rendered, the messages it flashed."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.templates: list[RenderedTemplate] = []
        self.flashes: list[FlashedMessage] = []
        self.original_template_class: type[jinja2.Template] | None = None

    def on_template(
        self, sender: Flask, template: jinja2.Template, context: dict[str, t.Any], **_: t.Any
    ) -> None:
        self.templates.append(RenderedTemplate(template.name, template, dict(context)))

    def on_flash(self, sender: Flask, message: str, category: str, **_: t.Any) -> None:
        self.flashes.append(FlashedMessage(message, category))

    @classmethod
    def start(cls, app: Flask, render_templates: bool = True) -> RequestRecorder:
        """Record ``app``'s templates and flashes from now on (``render_templates``: see the mixin)."""
        recorder = cls(app)
        recorder.connect()
        if not render_templates:
            recorder.silence_templates()
        return recorder

    def stop(self) -> None:
        """Stop recording and restore the app's templates."""
        try:
            self.disconnect()
        finally:
            self.restore_templates()

    def clear(self) -> None:
        """Forget what was recorded (before each test)."""
        self.templates.clear()
        self.flashes.clear()

    def connect(self) -> None:
        template_rendered.connect(self.on_template, sender=self.app, weak=False)
        message_flashed.connect(self.on_flash, sender=self.app, weak=False)

    def disconnect(self) -> None:
        # From every sender: blinker (1.9) forgets a receiver disconnected from
        # one sender only, and would keep it (and the app) alive for good.
        template_rendered.disconnect(self.on_template)
        message_flashed.disconnect(self.on_flash)

    def silence_templates(self) -> None:
        """Make the app's templates render to ``""`` (they are still loaded and compiled)."""
        env = self.app.jinja_env
        original = self.original_template_class = env.template_class
        env.template_class = type(
            f"Silent{original.__name__}",
            (original,),
            {"render": _render_nothing, "generate": _generate_nothing},
        )
        _clear_template_cache(env)

    def restore_templates(self) -> None:
        if self.original_template_class is not None:
            env = self.app.jinja_env
            env.template_class = self.original_template_class
            self.original_template_class = None
            _clear_template_cache(env)


def _render_nothing(self: jinja2.Template, *args: t.Any, **kwargs: t.Any) -> str:
    return ""


def _generate_nothing(self: jinja2.Template, *args: t.Any, **kwargs: t.Any) -> t.Iterator[str]:
    return iter(())


def _clear_template_cache(env: jinja2.Environment) -> None:
    # Templates loaded before the swap are instances of the other class.
    if env.cache is not None:
        env.cache.clear()


class RequestAssertionsMixin(_TestCaseBase):
    """Assertions on responses, rendered templates and flashed messages.

    For :class:`unittest.TestCase` subclasses whose ``app`` class attribute is
    the Flask app under test, set in ``setUpClass``. The case must call
    :meth:`_ra_setup_class` after setting ``app``, :meth:`_ra_teardown_class`
    in ``tearDownClass`` and :meth:`_ra_reset` at the start of each test
    (the library's own test cases keep the recorder with the rest of their
    class state instead, and need none of the three).
    """

    app: t.ClassVar[Flask]

    #: ``False``: templates are still looked up, compiled and recorded with
    #: their context, but render to an empty string (faster views, smaller
    #: bodies). Set per class.
    render_templates: t.ClassVar[bool] = True

    _ra_recorder: t.ClassVar[RequestRecorder | None] = None

    # -- lifecycle hooks -------------------------------------------------------------

    @classmethod
    def _ra_setup_class(cls) -> None:
        """Start recording ``cls.app``'s templates and flashes (idempotent)."""
        app = getattr(cls, "app", None)
        if not isinstance(app, Flask):
            raise ConfigurationError(
                f"{cls.__qualname__}._ra_setup_class() needs the Flask app in "
                f"{cls.__qualname__}.app first (found {app!r})."
            )
        current = vars(cls).get("_ra_recorder")
        if current is not None:
            if current.app is app:
                return
            cls._ra_teardown_class()
        cls._ra_recorder = RequestRecorder.start(app, cls.render_templates)

    @classmethod
    def _ra_teardown_class(cls) -> None:
        """Stop recording and restore the app's templates (idempotent)."""
        recorder = vars(cls).get("_ra_recorder")
        if recorder is None:
            return
        cls._ra_recorder = None
        recorder.stop()

    def _ra_reset(self) -> None:
        """Forget the templates and flashes recorded before this test."""
        recorder = type(self)._ra_recorder
        if recorder is not None:
            recorder.clear()

    def _ra_recording(self) -> RequestRecorder:
        recorder = type(self)._ra_recorder
        if recorder is None:
            raise ConfigurationError(
                f"templates and flashed messages are not recorded for {type(self).__qualname__}: "
                "its setUpClass must call super().setUpClass() (or, outside "
                "TransactionalTestCase, cls._ra_setup_class())."
            )
        return recorder

    # -- recordings --------------------------------------------------------------------

    @property
    def rendered_templates(self) -> list[RenderedTemplate]:
        """Templates the app rendered in this test so far, in order."""
        return list(self._ra_recording().templates)

    @property
    def flashed_messages(self) -> list[FlashedMessage]:
        """Messages the app flashed in this test so far, in order."""
        return list(self._ra_recording().flashes)

    # -- status ------------------------------------------------------------------------

    def assertStatus(self, response: Response, status_code: int, msg: str | None = None) -> None:
        """Assert that ``response`` has status ``status_code``."""
        if response.status_code != status_code:
            standard = (
                f"{_request_line(response)}: status {response.status}, expected "
                f"{_status_text(status_code)}{_chain(response)}\n{_body_preview(response)}"
            )
            self.fail(self._formatMessage(msg, standard))

    def assert200(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 200."""
        self.assertStatus(response, 200, msg)

    def assert201(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 201."""
        self.assertStatus(response, 201, msg)

    def assert204(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 204."""
        self.assertStatus(response, 204, msg)

    def assert301(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 301."""
        self.assertStatus(response, 301, msg)

    def assert302(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 302."""
        self.assertStatus(response, 302, msg)

    def assert400(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 400."""
        self.assertStatus(response, 400, msg)

    def assert401(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 401."""
        self.assertStatus(response, 401, msg)

    def assert403(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 403."""
        self.assertStatus(response, 403, msg)

    def assert404(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 404."""
        self.assertStatus(response, 404, msg)

    def assert405(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 405."""
        self.assertStatus(response, 405, msg)

    def assert409(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 409."""
        self.assertStatus(response, 409, msg)

    def assert422(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 422."""
        self.assertStatus(response, 422, msg)

    def assert500(self, response: Response, msg: str | None = None) -> None:
        """Assert that ``response`` has status 500."""
        self.assertStatus(response, 500, msg)

    # -- redirects -----------------------------------------------------------------------

    def assertRedirects(
        self,
        response: Response,
        location: str,
        status_code: int | None = None,
        msg: str | None = None,
    ) -> None:
        """Assert that ``response`` redirects to ``location``.

        ``location`` may be relative (``"/login?next=/"``) or absolute
        (``"http://localhost/login?next=/"``); both it and the ``Location``
        header are resolved against the request's URL before comparing. The
        status must be ``status_code``, or any of 301, 302, 303, 307 and 308.

        For a response made with ``follow_redirects=True`` there must have been
        at least one redirect, the first one must have that status, and the
        final request must have gone to ``location``.
        """
        history: tuple[Response, ...] = tuple(getattr(response, "history", ()) or ())
        if history:
            self._ra_assert_followed(response, history, location, status_code, msg)
            return
        allowed = {status_code} if status_code is not None else REDIRECT_CODES
        header = response.headers.get("Location")
        if response.status_code not in allowed or header is None:
            expected = _status_text(status_code) if status_code is not None else "a redirect"
            standard = (
                f"{_request_line(response)}: status {response.status}"
                f"{'' if header is None else f' to {header!r}'}, expected {expected} to "
                f"{location!r}\n{_body_preview(response)}"
            )
            self.fail(self._formatMessage(msg, standard))
        base = _request_url(response) or "http://localhost/"
        if _normalize_url(header, base) != _normalize_url(location, base):
            standard = (
                f"{_request_line(response)}: redirects to {header!r} "
                f"({_normalize_url(header, base)}), expected {location!r} "
                f"({_normalize_url(location, base)})"
            )
            self.fail(self._formatMessage(msg, standard))

    def _ra_assert_followed(
        self,
        response: Response,
        history: tuple[Response, ...],
        location: str,
        status_code: int | None,
        msg: str | None,
    ) -> None:
        first = history[0]
        if status_code is not None and first.status_code != status_code:
            standard = (
                f"{_request_line(first)}: redirected with status {first.status}, "
                f"expected {_status_text(status_code)}{_chain(response)}"
            )
            self.fail(self._formatMessage(msg, standard))
        base = _request_url(first) or "http://localhost/"
        final = _request_url(response)
        if final is None or _normalize_url(final, base, fragment=False) != _normalize_url(
            location, base, fragment=False
        ):
            standard = (
                f"the redirects ended at {final}, expected {location!r} "
                f"({_normalize_url(location, base, fragment=False)}){_chain(response)}"
            )
            self.fail(self._formatMessage(msg, standard))

    # -- templates and context ---------------------------------------------------------

    def assertTemplateUsed(self, name: str, msg: str | None = None) -> None:
        """Assert that the app rendered template ``name`` in this test.

        Only templates passed to ``render_template``/``stream_template`` count,
        not those they extend or include.
        """
        rendered = self._ra_recording().templates
        if not any(r.name == name for r in rendered):
            standard = f"template {name!r} was not rendered; {_rendered_names(rendered)}"
            self.fail(self._formatMessage(msg, standard))

    def assertTemplateNotUsed(self, name: str, msg: str | None = None) -> None:
        """Assert that the app did not render template ``name`` in this test."""
        rendered = self._ra_recording().templates
        count = sum(1 for r in rendered if r.name == name)
        if count:
            standard = f"template {name!r} was rendered {count} time(s); {_rendered_names(rendered)}"
            self.fail(self._formatMessage(msg, standard))

    def get_context_variable(self, name: str, template: str | None = None) -> t.Any:
        """The value of ``name`` in the context of the latest render that had it.

        ``template`` limits the search to renders of that template. Fails the
        test when no such render had ``name`` in its context.
        """
        rendered = self._ra_recording().templates
        candidates = [r for r in rendered if template is None or r.name == template]
        for render in reversed(candidates):
            if name in render.context:
                return render.context[name]
        where = f"template {template!r}" if template is not None else "any rendered template"
        if not candidates:
            detail = _rendered_names(rendered)
        else:
            keys = sorted({k for r in candidates for k in r.context})
            detail = f"context names: {', '.join(keys)}"
        self.fail(f"no context variable {name!r} in {where}; {detail}")

    def assertContext(
        self, name: str, value: t.Any, template: str | None = None, msg: str | None = None
    ) -> None:
        """Assert that context variable ``name`` equals ``value`` (see :meth:`get_context_variable`)."""
        actual = self.get_context_variable(name, template)
        if actual != value:
            standard = f"context variable {name!r} is {actual!r}, expected {value!r}"
            self.fail(self._formatMessage(msg, standard))

    # -- flashed messages --------------------------------------------------------------

    def assertMessageFlashed(self, message: str, category: str = "message", msg: str | None = None) -> None:
        """Assert that the app called ``flash(message, category)`` in this test."""
        flashes = self._ra_recording().flashes
        if FlashedMessage(message, category) not in flashes:
            seen = ", ".join(f"{f.message!r} ({f.category})" for f in flashes) or "none"
            standard = f"message {message!r} ({category}) was not flashed; flashed: {seen}"
            self.fail(self._formatMessage(msg, standard))

    # -- JSON ----------------------------------------------------------------------------

    def assertJSONEqual(
        self, response_or_text: Response | str | bytes, expected: t.Any, msg: str | None = None
    ) -> None:
        """Assert that a JSON response (or JSON text) equals ``expected``.

        ``expected`` is a Python value, or JSON text when it is a ``str`` or
        ``bytes`` (to expect a JSON string, pass ``json.dumps("text")``).
        A response must have a JSON ``Content-Type``.
        """
        actual = self._ra_json(response_or_text, msg)
        if isinstance(expected, (str, bytes)):
            try:
                expected = json.loads(expected)
            except ValueError as exc:
                self.fail(self._formatMessage(msg, f"expected is not valid JSON ({exc}): {expected!r}"))
        self.assertEqual(actual, expected, msg)

    def assertJSONContains(
        self, response_or_text: Response | str | bytes, subset: t.Mapping[str, t.Any], msg: str | None = None
    ) -> None:
        """Assert that a JSON object has every key of ``subset`` with an equal value.

        Nested objects in ``subset`` are compared the same way (they may leave
        keys out); any other value must be equal.
        """
        actual = self._ra_json(response_or_text, msg)
        problems = list(_subset_problems(actual, subset, "$"))
        if problems:
            standard = "JSON does not contain the expected values:\n  " + "\n  ".join(problems)
            self.fail(self._formatMessage(msg, standard))

    def _ra_json(self, response_or_text: Response | str | bytes, msg: str | None) -> t.Any:
        if isinstance(response_or_text, Response):
            response = response_or_text
            if not response.is_json:
                standard = (
                    f"{_request_line(response)}: Content-Type is {response.content_type!r}, "
                    f"not JSON (status {response.status})\n{_body_preview(response)}"
                )
                self.fail(self._formatMessage(msg, standard))
            text: str | bytes = response.get_data()
        else:
            text = response_or_text
        try:
            return json.loads(text)
        except ValueError as exc:
            self.fail(self._formatMessage(msg, f"not valid JSON ({exc}): {_shorten(_text(text))}"))

    # -- Flask-Testing's snake_case names ------------------------------------------------

    assert_status = assertStatus
    assert_200 = assert200
    assert_400 = assert400
    assert_401 = assert401
    assert_403 = assert403
    assert_404 = assert404
    assert_405 = assert405
    assert_500 = assert500
    assert_redirects = assertRedirects
    assert_template_used = assertTemplateUsed
    assert_template_not_used = assertTemplateNotUsed
    assert_context = assertContext
    assert_message_flashed = assertMessageFlashed


# -- message helpers ---------------------------------------------------------------------


def _status_text(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase.upper()}"
    except ValueError:
        return str(code)


def _request_url(response: Response) -> str | None:
    request = getattr(response, "request", None)
    url = getattr(request, "url", None)
    return url if isinstance(url, str) else None


def _request_line(response: Response) -> str:
    request = getattr(response, "request", None)
    url = _request_url(response)
    if request is None or url is None:
        return "response"
    return f"{getattr(request, 'method', '?')} {url}"


def _chain(response: Response) -> str:
    """`` (redirects: GET /a -> 302 /b -> ...)`` for a response that followed redirects."""
    history = tuple(getattr(response, "history", ()) or ())
    if not history:
        return ""
    steps = [_request_line(history[0])]
    for hop in history:
        steps.append(f"{hop.status_code} {hop.headers.get('Location')}")
    steps.append(f"{response.status_code}")
    return f" (followed: {' -> '.join(steps)})"


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _shorten(text: str) -> str:
    if len(text) > BODY_PREVIEW_CHARS:
        return repr(text[:BODY_PREVIEW_CHARS]) + f" ... ({len(text)} characters)"
    return repr(text)


def _body_preview(response: Response) -> str:
    try:
        data = response.get_data()
    except Exception as exc:  # noqa: BLE001 - a failure message must not raise
        return f"body: <unreadable: {exc}>"
    if not data:
        return "body: empty"
    try:
        text = data.decode(response.mimetype_params.get("charset", "utf-8"))
    except (UnicodeDecodeError, LookupError):
        return f"body: {len(data)} bytes of {response.content_type or 'binary data'}"
    return f"body: {_shorten(text)}"


def _normalize_url(url: str, base: str, fragment: bool = True) -> str:
    """``url`` resolved against ``base``, with scheme/host case and default ports normalized."""
    parts = urlsplit(iri_to_uri(urljoin(base, url)))
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None or (scheme, port) in {("http", 80), ("https", 443)} else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment if fragment else ""))


def _rendered_names(rendered: t.Sequence[RenderedTemplate]) -> str:
    if not rendered:
        return "no template was rendered in this test"
    return "rendered: " + ", ".join(repr(r.name) for r in rendered)


def _subset_problems(actual: t.Any, expected: t.Any, path: str) -> t.Iterator[str]:
    if isinstance(expected, t.Mapping):
        if not isinstance(actual, dict):
            yield f"{path}: expected an object, got {actual!r}"
            return
        for key, value in expected.items():
            if key not in actual:
                yield f"{path}.{key}: missing"
            else:
                yield from _subset_problems(actual[key], value, f"{path}.{key}")
    elif actual != expected:
        yield f"{path}: expected {expected!r}, got {actual!r}"
