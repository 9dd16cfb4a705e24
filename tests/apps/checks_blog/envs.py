"""The bodies of the fixtures' ``env.py`` files, written once.

``run_with_current_app`` behaves like Flask-Migrate's generated ``env.py``
(engine and metadata from ``current_app``, ``fileConfig`` of the ini's logging
sections, Flask-Migrate's ``configure_args``); ``run_with_shared_connection``
is Alembic's "sharing a connection" recipe, with no Flask at all.
"""

from __future__ import annotations

import typing as t
from logging.config import fileConfig

import sqlalchemy as sa
from sqlalchemy.pool import NullPool


def _configure_logging() -> None:
    from alembic import context

    if context.config.config_file_name is not None:
        # As generated env.py files do: this disables every existing logger.
        fileConfig(context.config.config_file_name)


def run_with_current_app() -> None:
    from alembic import context
    from flask import current_app

    _configure_logging()
    migrate = current_app.extensions["migrate"]
    engine = migrate.db.engine
    context.config.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=migrate.db.metadatas[None],
            **migrate.configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()


def run_with_shared_connection(target_metadata: t.Any = None) -> None:
    from alembic import context

    _configure_logging()
    config = context.config

    def run(connection: sa.Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()

    connection = config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = sa.engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=NullPool
    )
    with engine.connect() as connection:
        run(connection)


def run_each_database() -> None:
    """Flask-Migrate's multi-database env.py: every bind of SQLALCHEMY_BINDS in turn."""
    from alembic import context
    from flask import current_app

    _configure_logging()
    migrate = current_app.extensions["migrate"]
    names = ["", *(current_app.config.get("SQLALCHEMY_BINDS") or {})]
    for name in names:
        key = name or None
        with migrate.db.engines[key].connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=migrate.db.metadatas.get(key),
                upgrade_token=f"{name}_upgrades",
                downgrade_token=f"{name}_downgrades",
                **migrate.configure_args,
            )
            with context.begin_transaction():
                context.run_migrations(engine_name=name)
