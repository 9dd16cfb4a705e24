"""The module-level app's tests: one class names it, one finds it as ``app.py``; no create_app anywhere.

``SHAPES_REPORT``: as in ``tutorial/sample_flaskr.py``.
"""

from __future__ import annotations

import os

import app as legacy

from transactional_testcase import TransactionalTestCase


class LegacyCase(TransactionalTestCase):
    alembic_config = False

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        report = os.environ.get("SHAPES_REPORT")
        if report:
            assert cls._tt_state is not None
            with open(report, "a", encoding="utf-8") as f:
                for engine in cls._tt_state.engines.values():
                    f.write(f"{os.getpid()} {engine.url.render_as_string(hide_password=False)}\n")

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        legacy.check_restored()

    def assertEmpty(self) -> None:
        self.assertEqual((legacy.count(legacy.Note), legacy.count(legacy.AuditEntry)), (0, 0))


class NamedAppTests(LegacyCase):
    flask_app = "app:app"

    def test_a_commit_on_both_binds(self) -> None:
        self.assertIs(self.app, legacy.app)
        self.assertTrue(self.app.config["TESTING"])
        self.assertEmpty()
        response = self.client.post("/notes", json={"text": "a"})
        self.assertEqual(response.get_json(), {"notes": 1, "audit": 1})

    def test_b_rolled_back(self) -> None:
        self.assertEmpty()
        legacy.db.session.add(legacy.Note(text="b"))
        legacy.db.session.commit()


class DiscoveredAppTests(LegacyCase):
    def test_a_found_as_app_py(self) -> None:
        self.assertIs(self.app, legacy.app)
        self.assertEmpty()
        self.client.post("/notes", json={"text": "c"})

    def test_b_rolled_back(self) -> None:
        self.assertEmpty()
