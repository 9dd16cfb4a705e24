"""The library app as many projects write it: the factory does not register
Flask-Migrate; ``manage.py`` (never imported by the tests) does."""

from __future__ import annotations

import typing as t

from flask import Flask

from . import base_app


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    return base_app(config)
