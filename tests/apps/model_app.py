"""The shop app plus the failing routes tests/test_state_machine.py drives.

:func:`create_app` is :func:`tests.apps.shop.create_app` with routes that add a
row to either bind, flush it and then fail: with ``abort(500)`` (an HTTP
error, answered 500 whatever the configuration) or with an exception (answered
500 because :class:`ModelCase` sets ``PROPAGATE_EXCEPTIONS = False``).

:class:`ModelCase` gives the state machine databases of its own (``..._sm``
and ``..._sm_audit``), so another test process using the shop app's databases
at the same time cannot drop them under a long run.
"""

from __future__ import annotations

import typing as t

from flask import Flask, abort, request

from tests.apps import shop


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = shop.create_app(config)

    @app.post("/customers/explode")
    def add_customer_then_raise() -> t.Any:
        shop.db.session.add(shop.Customer(email=request.get_json()["email"]))
        shop.db.session.flush()
        raise RuntimeError("the view failed after flushing a customer")

    @app.post("/audit/fail")
    def add_audit_then_abort() -> t.Any:
        shop.db.session.add(shop.AuditEntry(message=request.get_json()["message"]))
        shop.db.session.flush()
        abort(500)

    @app.post("/audit/explode")
    def add_audit_then_raise() -> t.Any:
        shop.db.session.add(shop.AuditEntry(message=request.get_json()["message"]))
        shop.db.session.flush()
        raise RuntimeError("the view failed after flushing an audit entry")

    return app


if t.TYPE_CHECKING:  # the generated classes are BackendTestCases: let mypy see their API
    from tests.matrix import BackendTestCase as _CaseBase
else:
    _CaseBase = object


class ModelCase(shop.ShopCase, _CaseBase):  # type: ignore[misc]
    """Mixin for ``@on_all_backends`` classes that run against :func:`create_app`."""

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return create_app(config)

    @classmethod
    def get_database_url(cls) -> str:
        return cls.bind_url("sm")

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        config = shop.with_bind(super().get_app_config(), "audit", cls.bind_url("sm_audit"))
        # An exception in a view becomes a 500 response, as in production.
        config["PROPAGATE_EXCEPTIONS"] = False
        return config
