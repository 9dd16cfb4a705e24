"""The shop app on every backend: the basic promise in a few lines."""

from __future__ import annotations

from tests.apps import shop
from tests.apps.shop import ShopCase
from tests.matrix import on_all_backends


@on_all_backends
class SmokeTest(ShopCase):
    def test_commit_is_rolled_back_a(self):
        self.client.post("/customers", json={"email": "a@example.com"})
        shop.session.add(shop.AuditEntry(message="x"))
        shop.session.commit()
        self.assertEqual(shop.count(shop.Customer), 1)
        self.assertEqual(shop.count(shop.AuditEntry), 1)

    def test_commit_is_rolled_back_b(self):
        self.assertEqual(shop.count(shop.Customer), 0)
        self.assertEqual(shop.count(shop.AuditEntry), 0)
        self.client.post("/customers", json={"email": "a@example.com"})
        self.assertEqual(shop.count(shop.Customer), 1)
