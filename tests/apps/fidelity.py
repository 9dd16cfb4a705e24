"""Parents and children joined by a DEFERRABLE INITIALLY DEFERRED foreign key.

The end-of-test fidelity tests (``tests/test_fidelity.py``) use it: a child
may reference a missing parent until COMMIT, so a test whose "commit" is only
a RELEASE SAVEPOINT would never see the violation unless the library checks
before rolling back.

* PostgreSQL and SQLite get the deferred foreign key; MySQL/MariaDB, which
  has no deferred constraints, gets an ordinary one (checked per statement).
* ``create_app(config)`` turns SQLite's foreign-key enforcement on with a
  connect listener (``PRAGMA foreign_keys=ON``), as apps that want it do,
  unless ``config["FIDELITY_SQLITE_FOREIGN_KEYS"]`` is false.
* Every statement any engine of the app sends is recorded in
  :data:`statements` (cleared by the tests), so a test can show what the
  library added at the end of a test.

Built with ``db.create_all()`` (tests set ``alembic_config = False``).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

# The default model class, like the shop app's (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
db = SQLAlchemy()

#: Name of the deferred foreign key: the failure message must name it.
DEFERRED_FK = "fk_fid_children_parent_deferred"

#: (label, statement) of every statement sent; the label is what :data:`current` held then.
statements: list[tuple[str, str]] = []
#: Set by a test harness to attribute statements to the test that sent them.
current: list[str] = [""]


class Parent(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "fid_parents"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


class Child(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "fid_children"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(sa.Integer)
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["parent_id"], ["fid_parents.id"], name=DEFERRED_FK, deferrable=True, initially="DEFERRED"
        ).ddl_if(dialect=("postgresql", "sqlite")),  # type: ignore[arg-type]  # a tuple works, as in execute_if
        sa.ForeignKeyConstraint(["parent_id"], ["fid_parents.id"], name="fk_fid_children_parent").ddl_if(
            dialect="mysql"
        ),
    )


def _enforce_foreign_keys(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
    statements.append((current[0], " ".join(statement.split())))


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", FIDELITY_SQLITE_FOREIGN_KEYS=True)
    app.config.update(config or {})
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "before_cursor_execute", _record)
            if engine.dialect.name == "sqlite" and app.config["FIDELITY_SQLITE_FOREIGN_KEYS"]:
                event.listen(engine, "connect", _enforce_foreign_keys)
    return app
