"""Request assertions (``transactional_testcase.assertions``) against a real app.

Every assertion is shown to pass when it should and to fail, with a message
that says why, when it should. The app (``tests/apps/pages``) renders real
Jinja templates, flashes messages, redirects with relative and absolute
``Location`` headers and serves JSON. These tests run on SQLite; one class runs
a full form-post flow on every backend.
"""

from __future__ import annotations

import json
import typing as t
import unittest

import jinja2
from flask import Flask, message_flashed, render_template_string, template_rendered
from werkzeug.test import TestResponse

from tests.apps import pages
from tests.matrix import on_all_backends
from transactional_testcase import ConfigurationError, TransactionalTestCase
from transactional_testcase.assertions import (
    REDIRECT_CODES,
    FlashedMessage,
    RequestAssertionsMixin,
)


class RecordingHooks(RequestAssertionsMixin):
    """Calls the mixin's hooks, as TransactionalTestCase will once it includes the mixin.

    The hooks are idempotent, so this stays correct after the integration.
    """

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._ra_setup_class()

    @classmethod
    def tearDownClass(cls) -> None:
        try:
            cls._ra_teardown_class()
        finally:
            super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self._ra_reset()


class PagesCase(RecordingHooks, TransactionalTestCase):
    """The pages app on SQLite."""

    alembic_config = False

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return pages.create_app(config)

    def failure(self, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> str:
        """Call an assertion that must fail; return its message."""
        with self.assertRaises(self.failureException) as cm:
            func(*args, **kwargs)
        return str(cm.exception)


class StatusAssertionTests(PagesCase):
    SHORTCUTS = (200, 201, 204, 301, 302, 400, 401, 403, 404, 405, 409, 422, 500)

    def test_each_shortcut_passes_on_its_status(self) -> None:
        for code in self.SHORTCUTS:
            with self.subTest(code=code):
                response = self.client.get(f"/status/{code}")
                self.assertEqual(response.status_code, code)
                getattr(self, f"assert{code}")(response)
                self.assertStatus(response, code)

    def test_each_shortcut_fails_on_another_status(self) -> None:
        for code in self.SHORTCUTS:
            other = 418  # no shortcut for it
            with self.subTest(code=code):
                response = self.client.get(f"/status/{other}")
                message = self.failure(getattr(self, f"assert{code}"), response)
                self.assertIn(f"expected {code} ", message)
                self.assertIn("status 418", message)

    def test_failure_message_shows_request_status_and_body(self) -> None:
        response = self.client.get("/status/404")
        message = self.failure(self.assert200, response)
        self.assertIn("GET http://localhost/status/404", message)
        self.assertIn("status 404 NOT FOUND, expected 200 OK", message)
        self.assertIn("'status 404 body'", message)

    def test_failure_message_shortens_long_bodies(self) -> None:
        message = self.failure(self.assert200, self.client.get("/long-error"))
        self.assertIn("status 400 BAD REQUEST", message)
        self.assertIn("(1000 characters)", message)
        self.assertLess(len(message), 600)

    def test_failure_message_describes_binary_bodies(self) -> None:
        message = self.failure(self.assert200, self.client.get("/binary-error"))
        self.assertIn("256 bytes of application/octet-stream", message)

    def test_failure_message_of_an_empty_body(self) -> None:
        message = self.failure(self.assert200, self.client.get("/status/204"))
        self.assertIn("body: empty", message)

    def test_custom_msg_is_added_to_the_standard_message(self) -> None:
        message = self.failure(self.assert404, self.client.get("/status/200"), msg="after login")
        self.assertIn("after login", message)
        self.assertIn("expected 404 NOT FOUND", message)

    def test_method_is_reported(self) -> None:
        response = self.client.post("/status/200")
        self.assert405(response)
        message = self.failure(self.assert200, response)
        self.assertIn("POST http://localhost/status/200", message)

    def test_a_response_without_a_request_is_described(self) -> None:
        from flask import Response

        message = self.failure(self.assert200, Response("plain", status=503))
        self.assertIn("response: status 503 SERVICE UNAVAILABLE", message)
        self.assertIn("'plain'", message)

    def test_snake_case_aliases(self) -> None:
        response = self.client.get("/status/404")
        self.assert_404(response)
        self.assert_status(response, 404)
        self.failure(self.assert_200, response)
        aliases = {
            "assert_status": "assertStatus",
            "assert_200": "assert200",
            "assert_400": "assert400",
            "assert_401": "assert401",
            "assert_403": "assert403",
            "assert_404": "assert404",
            "assert_405": "assert405",
            "assert_500": "assert500",
            "assert_redirects": "assertRedirects",
            "assert_template_used": "assertTemplateUsed",
            "assert_template_not_used": "assertTemplateNotUsed",
            "assert_context": "assertContext",
            "assert_message_flashed": "assertMessageFlashed",
        }
        for alias, name in aliases.items():
            self.assertIs(getattr(RequestAssertionsMixin, alias), getattr(RequestAssertionsMixin, name))


class RedirectAssertionTests(PagesCase):
    def test_relative_location_header(self) -> None:
        response = self.client.get("/go/302")
        self.assertEqual(response.headers["Location"], "/target?from=go")  # Werkzeug >= 2.1
        self.assertRedirects(response, "/target?from=go")
        self.assertRedirects(response, "http://localhost/target?from=go")
        self.assertRedirects(response, "../target?from=go")  # resolved against /go/302
        message = self.failure(self.assertRedirects, response, "target?from=go")
        self.assertIn("expected 'target?from=go' (http://localhost/go/target?from=go)", message)

    def test_absolute_location_header(self) -> None:
        response = self.client.get("/go-absolute")
        self.assertEqual(response.headers["Location"], "http://localhost/target")
        self.assertRedirects(response, "/target")
        self.assertRedirects(response, "http://localhost/target")
        self.assertRedirects(response, "HTTP://LOCALHOST:80/target")

    def test_wrong_location_fails(self) -> None:
        response = self.client.get("/go/302")
        message = self.failure(self.assertRedirects, response, "/target")
        self.assertIn("redirects to '/target?from=go' (http://localhost/target?from=go)", message)
        self.assertIn("expected '/target' (http://localhost/target)", message)
        self.failure(self.assertRedirects, response, "/elsewhere?from=go")
        self.failure(self.assertRedirects, response, "https://localhost/target?from=go")
        self.failure(self.assertRedirects, response, "http://localhost:8080/target?from=go")
        self.failure(self.assertRedirects, self.client.get("/go-absolute"), "/target/")

    def test_external_location(self) -> None:
        response = self.client.get("/go-external")
        self.assertRedirects(response, "https://example.com/elsewhere")
        self.failure(self.assertRedirects, response, "/elsewhere")
        self.failure(self.assertRedirects, response, "http://example.com/elsewhere")
        self.failure(self.assertRedirects, response, "https://example.org/elsewhere")
        self.assertRedirects(response, "https://EXAMPLE.com:443/elsewhere")

    def test_every_redirect_status_is_accepted(self) -> None:
        for code in sorted(REDIRECT_CODES):
            with self.subTest(code=code):
                response = self.client.get(f"/go/{code}")
                self.assertEqual(response.status_code, code)
                self.assertRedirects(response, "/target?from=go")
                self.assertRedirects(response, "/target?from=go", status_code=code)

    def test_status_code_must_match_when_given(self) -> None:
        response = self.client.get("/go/302")
        message = self.failure(self.assertRedirects, response, "/target?from=go", status_code=301)
        self.assertIn("status 302 FOUND to '/target?from=go', expected 301 MOVED PERMANENTLY", message)

    def test_non_redirect_fails(self) -> None:
        message = self.failure(self.assertRedirects, self.client.get("/target"), "/target")
        self.assertIn("GET http://localhost/target: status 200 OK, expected a redirect", message)
        self.assertIn("target reached", message)
        message = self.failure(self.assertRedirects, self.client.get("/status/304"), "/x")
        self.assertIn("status 304 NOT MODIFIED, expected a redirect", message)

    def test_created_with_location_is_a_redirect_only_when_asked(self) -> None:
        response = self.client.post("/api/items", json={"name": "bolt"})
        self.assert201(response)
        self.failure(self.assertRedirects, response, "/api/items/8")
        self.assertRedirects(response, "/api/items/8", status_code=201)

    def test_followed_redirect(self) -> None:
        response = self.client.get("/go/302", follow_redirects=True)
        self.assert200(response)
        self.assertEqual(len(response.history), 1)
        self.assertRedirects(response, "/target?from=go")
        self.assertRedirects(response, "http://localhost/target?from=go")
        self.assertRedirects(response, "/target?from=go", status_code=302)
        self.assertRedirects(response, "/target?from=go#top")  # browsers never send fragments

    def test_followed_redirect_to_wrong_location_fails(self) -> None:
        response = self.client.get("/go/302", follow_redirects=True)
        message = self.failure(self.assertRedirects, response, "/target")
        self.assertIn("the redirects ended at http://localhost/target?from=go", message)
        self.assertIn("expected '/target'", message)
        self.assertIn("followed: GET http://localhost/go/302 -> 302 /target?from=go -> 200", message)
        self.failure(self.assertRedirects, response, "/go/302")

    def test_followed_redirect_checks_the_first_status(self) -> None:
        response = self.client.get("/go/307", follow_redirects=True)
        message = self.failure(self.assertRedirects, response, "/target?from=go", status_code=302)
        self.assertIn("redirected with status 307 TEMPORARY REDIRECT, expected 302 FOUND", message)
        self.assertRedirects(response, "/target?from=go", status_code=307)

    def test_followed_chain_checks_the_final_location(self) -> None:
        response = self.client.get("/go-twice", follow_redirects=True)
        self.assertEqual(len(response.history), 2)
        self.assertRedirects(response, "/target?from=go")
        message = self.failure(self.assertRedirects, response, "/go/302")
        self.assertIn("-> 302 /go/302 -> 302 /target?from=go -> 200", message)

    def test_follow_redirects_without_a_redirect_fails(self) -> None:
        response = self.client.get("/target", follow_redirects=True)
        self.assertEqual(response.history, ())
        message = self.failure(self.assertRedirects, response, "/target")
        self.assertIn("expected a redirect", message)


class TemplateAssertionTests(PagesCase):
    def test_template_used_and_rendered(self) -> None:
        response = self.client.get("/")
        self.assert200(response)
        self.assertIn(b"<h1>Home</h1>", response.data)  # templates really render
        self.assertIn(b"rendered by base.html", response.data)
        self.assertTemplateUsed("index.html")
        self.assertTemplateNotUsed("about.html")
        self.assertEqual([r.name for r in self.rendered_templates], ["index.html"])

    def test_template_used_fails(self) -> None:
        self.client.get("/")
        message = self.failure(self.assertTemplateUsed, "about.html")
        self.assertIn("template 'about.html' was not rendered; rendered: 'index.html'", message)
        message = self.failure(self.assertTemplateNotUsed, "index.html")
        self.assertIn("template 'index.html' was rendered 1 time(s)", message)

    def test_only_the_rendered_template_counts_not_its_parents(self) -> None:
        response = self.client.get("/about")
        self.assertIn(b"rendered by base.html", response.data)
        self.assertTemplateUsed("about.html")
        self.failure(self.assertTemplateUsed, "base.html")

    def test_nothing_rendered(self) -> None:
        self.client.get("/target")
        message = self.failure(self.assertTemplateUsed, "index.html")
        self.assertIn("no template was rendered in this test", message)
        self.assertTemplateNotUsed("index.html")
        message = self.failure(self.get_context_variable, "title")
        self.assertIn("no context variable 'title' in any rendered template", message)

    def test_recordings_are_reset_between_tests_a(self) -> None:
        self.assertEqual(self.rendered_templates, [])
        self.assertEqual(self.flashed_messages, [])
        self.client.post("/items", data={"name": "reset-a"}, follow_redirects=True)
        self.assertTemplateUsed("index.html")
        self.assertEqual(len(self.flashed_messages), 2)

    def test_recordings_are_reset_between_tests_b(self) -> None:
        self.test_recordings_are_reset_between_tests_a()

    def test_context(self) -> None:
        self.session.add_all([pages.Item(name="bolt"), pages.Item(name="anchor")])
        self.session.commit()
        self.client.get("/")
        self.assertContext("title", "Home")
        self.assertContext("items", ["anchor", "bolt"])
        self.assertEqual(self.get_context_variable("items"), ["anchor", "bolt"])
        self.assertIn("request", self.rendered_templates[0].context)  # context processors ran

    def test_context_fails(self) -> None:
        self.client.get("/")
        message = self.failure(self.assertContext, "title", "About")
        self.assertIn("context variable 'title' is 'Home', expected 'About'", message)
        message = self.failure(self.assertContext, "missing", 1)
        self.assertIn("no context variable 'missing' in any rendered template", message)
        self.assertIn("items", message)  # the names that do exist
        message = self.failure(self.assertContext, "title", "Home", template="about.html")
        self.assertIn("no context variable 'title' in template 'about.html'", message)
        self.assertIn("rendered: 'index.html'", message)

    def test_latest_render_wins_unless_a_template_is_named(self) -> None:
        response = self.client.get("/two")
        self.assertIn(b"<aside>&lt;section&gt;Partial section", response.data)
        self.assertEqual([r.name for r in self.rendered_templates], ["partial.html", "index.html"])
        self.assertContext("title", "Home")
        self.assertContext("title", "Partial", template="partial.html")
        self.assertContext("sidebar", "<section>Partial section</section>")
        self.failure(self.assertContext, "sidebar", "x", template="partial.html")

    def test_render_template_string(self) -> None:
        response = self.client.get("/string")
        self.assertEqual(response.text, "Hello world!")
        self.assertEqual([r.name for r in self.rendered_templates], [None])
        self.assertContext("who", "world")

    def test_stream_template_is_recorded_once_streamed(self) -> None:
        response = self.client.get("/stream")
        self.assertEqual(response.text.split(), ["<div>r1</div>", "<div>r2</div>", "<div>r3</div>"])
        self.assertTemplateUsed("stream.html")
        self.assertContext("rows", ["r1", "r2", "r3"])

    def test_templates_rendered_in_the_test_itself(self) -> None:
        with self.app.test_request_context("/"):
            self.assertEqual(render_template_string("{{ 1 + n }}", n=2), "3")
        self.assertContext("n", 2)

    def test_other_apps_are_not_recorded(self) -> None:
        other = Flask("other")
        with other.app_context():
            self.assertEqual(render_template_string("{{ x }}", x="elsewhere"), "elsewhere")
        self.assertEqual(self.rendered_templates, [])

    def test_missing_template_still_raises(self) -> None:
        with self.assertRaises(jinja2.TemplateNotFound):
            self.client.get("/missing-template")


class FlashAssertionTests(PagesCase):
    def test_message_flashed(self) -> None:
        response = self.client.post("/items", data={"name": "bolt"})
        self.assertRedirects(response, "/")
        self.assertMessageFlashed("Item saved", "success")
        self.assertMessageFlashed("Plain note")  # category "message", flash()'s default
        self.assertEqual(
            self.flashed_messages,
            [FlashedMessage("Item saved", "success"), FlashedMessage("Plain note", "message")],
        )

    def test_message_flashed_fails(self) -> None:
        self.client.post("/items", data={"name": "bolt"})
        message = self.failure(self.assertMessageFlashed, "Item saved")
        self.assertIn("message 'Item saved' (message) was not flashed", message)
        self.assertIn("flashed: 'Item saved' (success), 'Plain note' (message)", message)
        self.failure(self.assertMessageFlashed, "Plain note", "success")
        self.failure(self.assertMessageFlashed, "Item", "success")

    def test_nothing_flashed(self) -> None:
        self.client.get("/")
        message = self.failure(self.assertMessageFlashed, "Item saved", "success")
        self.assertIn("flashed: none", message)

    def test_flashed_then_shown_after_the_redirect(self) -> None:
        response = self.client.post("/items", data={"name": "bolt"}, follow_redirects=True)
        self.assertRedirects(response, "/")
        self.assertIn(b'<p class="flash success">Item saved</p>', response.data)
        self.assertMessageFlashed("Item saved", "success")
        self.assertContext("items", ["bolt"])


class JSONAssertionTests(PagesCase):
    def test_json_equal(self) -> None:
        response = self.client.get("/api/item")
        self.assertJSONEqual(response, pages.ITEM_DOCUMENT)
        self.assertJSONEqual(response, json.dumps(pages.ITEM_DOCUMENT))
        self.assertJSONEqual(response.text, pages.ITEM_DOCUMENT)
        self.assertJSONEqual(response.data, json.dumps(pages.ITEM_DOCUMENT).encode())

    def test_json_equal_fails(self) -> None:
        response = self.client.get("/api/item")
        message = self.failure(self.assertJSONEqual, response, {**pages.ITEM_DOCUMENT, "name": "gadget"})
        self.assertIn("'gadget'", message)
        self.assertIn("'widget'", message)
        self.failure(self.assertJSONEqual, response, [pages.ITEM_DOCUMENT])
        self.failure(self.assertJSONEqual, '"text"', "text")  # expected str is JSON text: invalid
        self.assertJSONEqual('"text"', json.dumps("text"))

    def test_json_from_a_non_json_response_fails(self) -> None:
        response = self.client.get("/api/as-html")
        self.assertEqual(json.loads(response.text), pages.ITEM_DOCUMENT)
        message = self.failure(self.assertJSONEqual, response, pages.ITEM_DOCUMENT)
        self.assertIn("Content-Type is 'text/html; charset=utf-8', not JSON", message)
        self.assertIn("GET http://localhost/api/as-html", message)
        self.failure(self.assertJSONContains, response, {"id": 7})

    def test_invalid_json_text_fails(self) -> None:
        message = self.failure(self.assertJSONEqual, "{not json", {})
        self.assertIn("not valid JSON", message)
        self.assertIn("'{not json'", message)

    def test_json_contains(self) -> None:
        response = self.client.get("/api/item")
        self.assertJSONContains(response, {"name": "widget"})
        self.assertJSONContains(response, {"id": 7, "owner": {"name": "ann"}, "tags": ["a", "b"]})
        self.assertJSONContains(response, {})

    def test_json_contains_fails(self) -> None:
        response = self.client.get("/api/item")
        message = self.failure(
            self.assertJSONContains, response, {"owner": {"name": "bob"}, "price": 3, "tags": ["a"]}
        )
        self.assertIn("$.owner.name: expected 'bob', got 'ann'", message)
        self.assertIn("$.price: missing", message)
        self.assertIn("$.tags: expected ['a'], got ['a', 'b']", message)
        message = self.failure(self.assertJSONContains, response, {"name": {"first": "w"}})
        self.assertIn("$.name: expected an object, got 'widget'", message)
        self.failure(self.assertJSONContains, "[1, 2]", {"id": 1})

    def test_created_json(self) -> None:
        response = self.client.post("/api/items", json={"name": "bolt"})
        self.assert201(response)
        self.assertJSONEqual(response, {"id": 8, "name": "bolt"})


class NoRenderTests(PagesCase):
    """``render_templates = False``: recorded with their context, rendered to nothing."""

    render_templates = False

    def test_templates_are_recorded_but_not_rendered(self) -> None:
        response = self.client.get("/")
        self.assert200(response)
        self.assertEqual(response.data, b"")
        self.assertTemplateUsed("index.html")
        self.assertContext("title", "Home")

    def test_streamed_and_string_templates(self) -> None:
        self.assertEqual(self.client.get("/stream").data, b"")
        self.assertEqual(self.client.get("/string").data, b"")
        self.assertEqual([r.name for r in self.rendered_templates], ["stream.html", None])
        self.assertContext("who", "world")

    def test_missing_templates_still_raise(self) -> None:
        with self.assertRaises(jinja2.TemplateNotFound):
            self.client.get("/missing-template")


class LifecycleTests(unittest.TestCase):
    """The class hooks on a plain TestCase: idempotent, per app, and leaving nothing behind."""

    def make_case(self, **attrs: t.Any) -> type[RequestAssertionsMixin]:
        app = Flask("lifecycle", template_folder=None)
        app.config["SECRET_KEY"] = "x"
        namespace = {"app": app, "runTest": lambda self: None, **attrs}
        return type("Case", (RequestAssertionsMixin, unittest.TestCase), namespace)

    @staticmethod
    def receivers(app: Flask) -> int:
        return len(list(template_rendered.receivers_for(app))) + len(list(message_flashed.receivers_for(app)))

    def render(self, case: type[RequestAssertionsMixin], source: str = "{{ word }}") -> str:
        with case.app.test_request_context("/"):
            return render_template_string(source, word="hello")

    def test_connects_once_and_disconnects(self) -> None:
        case = self.make_case()
        self.assertEqual(self.receivers(case.app), 0)
        connected = (len(template_rendered.receivers), len(message_flashed.receivers))
        case._ra_setup_class()
        case._ra_setup_class()
        self.assertEqual(self.receivers(case.app), 2)
        test = case()
        self.render(case)
        self.assertEqual(len(test.rendered_templates), 1)
        test._ra_reset()
        self.assertEqual(test.rendered_templates, [])
        case._ra_teardown_class()
        case._ra_teardown_class()
        self.assertEqual(self.receivers(case.app), 0)
        # Forgotten by the signals, not only for this app: they would keep it alive.
        self.assertEqual((len(template_rendered.receivers), len(message_flashed.receivers)), connected)
        with self.assertRaises(ConfigurationError) as cm:
            test.assertTemplateUsed("x")
        self.assertIn("setUpClass must call super().setUpClass()", str(cm.exception))

    def test_a_subclass_records_for_its_own_app(self) -> None:
        parent = self.make_case()
        parent._ra_setup_class()
        self.addCleanup(parent._ra_teardown_class)
        child = type("Child", (parent,), {"app": Flask("child")})
        child._ra_setup_class()
        self.addCleanup(child._ra_teardown_class)
        self.render(child)
        self.assertEqual(len(child().rendered_templates), 1)
        self.assertEqual(parent().rendered_templates, [])

    def test_render_templates_false_is_undone_after_the_class(self) -> None:
        case = self.make_case(render_templates=False)
        self.assertEqual(self.render(case), "hello")  # loaded and cached as a normal template
        case._ra_setup_class()
        self.assertEqual(self.render(case), "")
        case._ra_teardown_class()
        self.assertEqual(self.render(case), "hello")
        self.assertIs(case.app.jinja_env.template_class, jinja2.Template)

    def test_setup_without_an_app(self) -> None:
        case = type("NoApp", (RequestAssertionsMixin, unittest.TestCase), {})
        with self.assertRaises(ConfigurationError) as cm:
            case._ra_setup_class()
        self.assertIn("needs the Flask app in NoApp.app", str(cm.exception))


@on_all_backends
class PagesFlow(RecordingHooks):
    """A form post that commits, flashes and redirects, on every backend; rolled back after."""

    alembic_config = False

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return pages.create_app(config)

    def post_item(self, name: str) -> TestResponse:
        response: TestResponse = self.client.post("/items", data={"name": name}, follow_redirects=True)
        return response

    def test_post_redirect_get_a(self) -> None:
        self.assertEqual(self.session.query(pages.Item).count(), 0)
        response = self.post_item("anchor")
        self.assert200(response)
        self.assertRedirects(response, "/", status_code=302)
        self.assertTemplateUsed("index.html")
        self.assertContext("items", ["anchor"])
        self.assertMessageFlashed("Item saved", "success")

    def test_post_redirect_get_b(self) -> None:
        self.test_post_redirect_get_a()
