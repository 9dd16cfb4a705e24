"""The shop app plus what tests/test_isolation.py needs beyond it.

* :func:`create_app` builds the shop app and adds a route that raises after a
  flush and one that starts a background "mailer" thread with its own app
  context (:class:`Mailer`).
* A session event listener is registered on ``shop.db.session`` at import time,
  long before any test case class redirects the session, as apps do.
* :func:`create_control_app` is a one-table app on its own ``SQLAlchemy``
  instance, for the control tests that switch a mechanism off: whatever they
  break cannot leak into the shop app's session or engines.
"""

from __future__ import annotations

import collections
import threading
import typing as t

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from tests.apps import shop

#: ``id()`` of every session that committed through ``shop.db.session``,
#: recorded by a listener registered at import time (bounded: the listener
#: also fires in other test modules).
committed_sessions: collections.deque[int] = collections.deque(maxlen=50)


@event.listens_for(shop.session_events, "after_commit")
def _record_commit(session: Session) -> None:
    committed_sessions.append(id(session))


class Mailer:
    """Sends "mail" from a background thread with its own app context.

    This is what apps do to keep a request fast. The thread's context
    teardown calls ``db.session.remove()`` (Flask-SQLAlchemy does, and so
    does :meth:`_run` explicitly).
    """

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.sent: list[str] = []
        self.errors: list[BaseException] = []

    def send(self, app: Flask, email: str, look_up_customer: bool) -> threading.Thread:
        thread = threading.Thread(
            target=self._run, args=(app, email, look_up_customer), name=f"mailer-{email}", daemon=True
        )
        self.threads.append(thread)
        thread.start()
        return thread

    def _run(self, app: Flask, email: str, look_up_customer: bool) -> None:
        with app.app_context():
            try:
                if look_up_customer:
                    shop.db.session.scalar(sa.select(shop.Customer.id).where(shop.Customer.email == email))
                self.sent.append(email)
            except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts on it
                self.errors.append(exc)
            finally:
                shop.end_session()


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = shop.create_app(config)
    app.extensions["mailer"] = mailer = Mailer()

    @app.post("/customers/explode")
    def add_then_raise() -> t.Any:
        shop.db.session.add(shop.Customer(email=request.get_json()["email"]))
        shop.db.session.flush()
        raise RuntimeError("the view failed after flushing")

    @app.post("/customers/welcome")
    def add_and_mail() -> t.Any:
        data = request.get_json()
        shop.session.add(shop.Customer(email=data["email"]))
        shop.session.commit()
        mailer.send(app, data["email"], look_up_customer=bool(data.get("look_up")))
        return jsonify(count=shop.count(shop.Customer)), 201

    return app


if t.TYPE_CHECKING:  # the generated classes are BackendTestCases: let mypy see their API
    from tests.matrix import BackendTestCase as _CaseBase
else:
    _CaseBase = object


class IsolationCase(shop.ShopCase, _CaseBase):  # type: ignore[misc]  # alembic_config = False
    """Mixin for ``@on_all_backends`` classes that run against :func:`create_app`.

    Its ``audit`` bind is a database of its own (``tt_iso_audit_<driver>_test``),
    so another test process using the shop app's ``audit`` database at the
    same time cannot drop it under these tests.
    """

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return create_app(config)

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        config = super().get_app_config()
        return shop.with_bind(config, "audit", cls.bind_url("iso_audit"))


# -- the control app ---------------------------------------------------------------


# The default model class, like the shop app's (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
control_db = SQLAlchemy()


class Note(control_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.String(50), unique=True)


def create_control_app(config: t.Mapping[str, t.Any]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    control_db.init_app(app)
    return app
