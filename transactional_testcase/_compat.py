"""The one place that reaches into other packages' non-public names.

Checked against SQLAlchemy 2.0.x and 2.1.9, Flask-SQLAlchemy 3.0.x and 3.1.1.
"""

from __future__ import annotations

# ``Engine.execution_options()`` returns an ``OptionEngine``: an Engine that
# shares its parent's pool, dialect, URL and event dispatch. It is public in
# behaviour but only importable from ``sqlalchemy.engine.base``.
from sqlalchemy.engine.base import OptionEngine

__all__ = ["OptionEngine"]
