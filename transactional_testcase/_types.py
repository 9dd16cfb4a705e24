"""Type aliases shared by the package's modules."""

from __future__ import annotations

import typing as t

#: Flask-SQLAlchemy's name of an engine: ``None`` for the default database,
#: else the key of ``SQLALCHEMY_BINDS``.
BindKey: t.TypeAlias = str | None
