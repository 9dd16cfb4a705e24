"""One backend's share of a run: its databases, its apps, its results, and their cleanup."""

from __future__ import annotations

import contextlib
import os
import typing as t

import sqlalchemy as sa
from flask import Flask

from benchmarks import servers
from benchmarks.databases import drop_templates, worker_urls
from benchmarks.fixtures import sqlite_begin_recipe
from benchmarks.schema import create_app, db
from benchmarks.settings import Settings
from benchmarks.workspace import WORK
from transactional_testcase import provisioning as tt_provisioning


class BackendRun:
    """Every measurement on one backend (``results``, filled by the sections), and the cleanup of what it created."""

    def __init__(self, driver: str, settings: Settings) -> None:
        self.driver = driver
        self.settings = settings
        self.sqlite_dir = os.path.join(WORK, f"sqlite_{driver}")
        os.makedirs(self.sqlite_dir, exist_ok=True)
        self.family = servers.family(servers.database_url(driver, "x_test", self.sqlite_dir))
        #: every database URL used here, dropped (with its templates) by cleanup()
        self.urls: list[str] = []
        self.main_url = self.url("tt_bench_{d}_test")
        self.alt_url = self.url("tt_bench_alt_{d}_test")
        self.prov_url = self.url("tt_bench_prov_{d}_test")
        self.apps: list[Flask] = []
        self.results: dict[str, t.Any] = {}

    def url(self, pattern: str) -> str:
        url = servers.database_url(self.driver, pattern.format(d=self.driver), self.sqlite_dir)
        self.urls.append(url)
        return url

    def app(self, url: str) -> Flask:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        self.apps.append(app)
        return app

    def floor_app(self) -> tuple[Flask, sa.Engine]:
        """An app of the main database and its engine, for the hand-written floors."""
        app = self.app(self.main_url)
        with app.app_context():
            engine = db.engine
        if self.family == "sqlite":
            sqlite_begin_recipe(engine)
        return app, engine

    def cleanup(self) -> None:
        for app in self.apps:
            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose()
        # The library's own cleanup (drops its databases and, with
        # KEEP_TEMPLATES=0, its templates), then ours for whatever remains.
        tt_provisioning.provisioner.drop_all()
        for url in self.urls:
            for name in [url, *worker_urls(url)]:
                with contextlib.suppress(Exception):
                    servers.drop_database(name)
            with contextlib.suppress(Exception):
                drop_templates(url)
