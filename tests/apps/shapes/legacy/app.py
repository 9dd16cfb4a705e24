"""An app without a factory: built at import, its URLs read from the environment.

``DATABASE_URL`` and ``AUDIT_DATABASE_URL`` (unset: in-memory SQLite, so that
importing it creates no file). Flask-SQLAlchemy 3 builds both engines here, at
import; :data:`IMPORT_TIME_CONNECTIONS` records every connection they ever make
(the tests check that they never connect).
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get("DATABASE_URL", "sqlite://")
app.config["SQLALCHEMY_BINDS"] = {"audit": os.environ.get("AUDIT_DATABASE_URL", "sqlite://")}
db = SQLAlchemy(app)

#: The bind keys of the connections the engines built at import made.
IMPORT_TIME_CONNECTIONS: list[str | None] = []
with app.app_context():
    IMPORT_TIME_ENGINES = dict(db.engines)
ORIGINAL_CONFIG = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS", "TESTING")}


def _record(key: str | None) -> t.Callable[..., None]:
    def connected(*args: t.Any) -> None:
        IMPORT_TIME_CONNECTIONS.append(key)

    return connected


for _key, _engine in IMPORT_TIME_ENGINES.items():
    sa.event.listen(_engine, "connect", _record(_key))


class Note(db.Model):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(100))


class AuditEntry(db.Model):
    __bind_key__ = "audit"
    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(sa.String(100))


def count(model: t.Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@app.post("/notes")
def add_note() -> t.Any:
    text = request.get_json()["text"]
    db.session.add_all([Note(text=text), AuditEntry(message=f"added {text}")])
    db.session.commit()
    return jsonify(notes=count(Note), audit=count(AuditEntry)), 201


def check_restored() -> None:
    """Raise unless the app has its own engines and configuration back, never connected."""
    with app.app_context():
        engines = dict(db.engines)
    if engines != IMPORT_TIME_ENGINES:
        raise AssertionError(f"the app's engines were not restored: {engines}")
    config = {k: app.config.get(k) for k in ORIGINAL_CONFIG}
    if config != ORIGINAL_CONFIG:
        raise AssertionError(f"the app's config was not restored: {config}")
    if IMPORT_TIME_CONNECTIONS:
        raise AssertionError(f"the engines built at import connected: {IMPORT_TIME_CONNECTIONS}")
