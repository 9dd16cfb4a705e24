"""The tutorial app's tests as a user writes them: no create_app, FLASK_APP=flaskr finds the factory.

``SHAPES_REPORT``: a file each class appends ``<pid> <url>`` lines to, one per
database it used (read by ``tests/test_app_shapes.py``).
"""

from __future__ import annotations

import os

from flaskr import Post, count, db

from transactional_testcase import TransactionalTestCase


class FlaskrCase(TransactionalTestCase):
    alembic_config = False  # the tutorial builds its schema itself

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        report = os.environ.get("SHAPES_REPORT")
        if report:
            assert cls._tt_state is not None
            with open(report, "a", encoding="utf-8") as f:
                for engine in cls._tt_state.engines.values():
                    f.write(f"{os.getpid()} {engine.url.render_as_string(hide_password=False)}\n")


class PostTests(FlaskrCase):
    @classmethod
    def setUpTestData(cls) -> None:
        db.session.add(Post(title="first"))

    def test_a_create_through_request(self) -> None:
        self.assertTrue(self.app.config["TESTING"])
        response = self.client.post("/posts", json={"title": "second"})
        self.assertEqual((response.status_code, response.get_json()), (201, {"count": 2}))

    def test_b_sees_the_class_data_only(self) -> None:
        self.assertEqual(count(), 1)
        db.session.add(Post(title="x"))
        db.session.commit()


class CountTests(FlaskrCase):
    def test_a_empty(self) -> None:
        self.assertEqual(self.client.get("/posts/count").get_json(), {"count": 0})
        db.session.add(Post(title="y"))
        db.session.commit()

    def test_b_empty_again(self) -> None:
        self.assertEqual(count(), 0)
        db.session.add(Post(title="z"))
        db.session.commit()
