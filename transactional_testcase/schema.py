"""Where a test database's schema comes from: Alembic migrations or ``create_all()``.

Both are a :class:`SchemaSource`: something with a fingerprint (so a database
already built from the same source is reused) and a way to build the schema
into the app's engines.

.. versionchanged:: 0.4
   Was ``migrations``; running Alembic moved to
   :mod:`~transactional_testcase.alembic_runner`.
"""

from __future__ import annotations

import hashlib
import os
import typing as t

from flask import Flask
from sqlalchemy.engine import Engine

from ._types import BindKey
from .alembic_runner import AlembicProject, AlembicSetting, MigrationFailure, alembic_project, reached
from .errors import MigrationError, mask_url

if t.TYPE_CHECKING:
    from .extension import Extension


class SchemaSource:
    """Builds the schema of a freshly created set of test databases."""

    #: What kind of source this is: its templates are kept apart from other
    #: kinds' (a class with migrations and one with ``create_all()`` on the
    #: same database each keep their own).
    kind: t.ClassVar[str] = "schema"

    def describe(self) -> str:
        """Where the schema comes from, for log lines and ``python -m transactional_testcase list``."""
        return self.kind

    def reached(self) -> str:
        """What the last :meth:`build` did, for a log line (``migrated to head 3f2a1b9c0d12``)."""
        return ""

    def fingerprint(self) -> str:
        """Changes whenever the schema this source builds changes."""
        raise NotImplementedError

    def build(self, app: Flask, extension: Extension, engines: t.Mapping[BindKey, Engine]) -> None:
        """Create the schema in ``engines`` (inside an app context of ``app``, its engines pointed at them).

        The databases are empty, or hold the schema of one of
        :meth:`earlier_fingerprints` (cloned from its template): then only
        what came after it is built.
        """
        raise NotImplementedError

    def earlier_fingerprints(self) -> list[Earlier]:
        """Earlier states of this source that :meth:`build` can carry on from, nearest first.

        .. versionadded:: 0.6
        """
        return []


class Earlier(t.NamedTuple):
    """An earlier state of a schema source: what it was, and where building on from it starts."""

    #: What :meth:`SchemaSource.fingerprint` returned then.
    fingerprint: str
    #: The revision it had reached (Alembic: the head then).
    reached: str


class CreateAllSchema(SchemaSource):
    """``alembic_config = False``: ``db.create_all()`` for every bind (each model metadata's ``create_all``)."""

    kind = "create_all"

    def __init__(self, extension: Extension, owner: str) -> None:
        self.extension = extension
        #: The class it is built for, named in its errors.
        self.owner = owner

    def describe(self) -> str:
        return self.extension.create_all_name()

    def reached(self) -> str:
        return f"created with {self.extension.create_all_name()}"

    def fingerprint(self) -> str:
        digest = hashlib.sha256(b"create_all")
        for key, metadatas in sorted(self.extension.metadatas().items(), key=lambda kv: str(kv[0])):
            digest.update(repr(key).encode())
            for metadata in metadatas:
                for table in metadata.sorted_tables:
                    digest.update(repr(table).encode())
        return digest.hexdigest()

    def build(self, app: Flask, extension: Extension, engines: t.Mapping[BindKey, Engine]) -> None:
        extension.create_all(engines, self.owner)


class AlembicSchema(SchemaSource):
    """Alembic migrations, run in-process inside the app context.

    The fingerprint hashes the revision files (and ``env.py``, when the
    project has one) without importing them; the
    revisions are loaded (and checked for a single head) only when a database
    is actually migrated, so a warm run never imports them.
    """

    kind = "alembic"

    def __init__(self, project: AlembicProject) -> None:
        self.project = project
        self._fingerprint: str | None = None
        self._heads: tuple[str, ...] | None = None

    def describe(self) -> str:
        return f"alembic {self.project.location}"

    def reached(self) -> str:
        if not self._heads:
            return "migrated (no revision)"
        return "migrated to head " + ", ".join(self._heads)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self._fingerprint_of(self.project.schema_files())
        return self._fingerprint

    def _fingerprint_of(self, paths: t.Iterable[str], contents: dict[str, bytes] | None = None) -> str:
        """The fingerprint of the project made of the files ``paths`` (in the order of ``schema_files``).

        ``contents``: each file's digest, by path, filled as files are read.
        """
        # File contents, not mtimes: a fresh checkout of the same migrations
        # is the same schema.
        contents = {} if contents is None else contents
        location = self.project.location
        digest = hashlib.sha256(b"alembic")
        for path in paths:
            if path not in contents:
                with open(path, "rb") as f:
                    contents[path] = hashlib.sha256(f.read()).digest()
            digest.update(os.path.relpath(path, location).encode())
            digest.update(contents[path])
        return digest.hexdigest()

    def earlier_fingerprints(self) -> list[Earlier]:
        """The project as it was at each of the :data:`EARLIER_HEADS` revisions nearest its head.

        A revision qualifies when every revision that is not one of its
        ancestors descends from it: migrating on from a database at that
        revision then runs the same steps, in the same order, as a build from
        base. Its fingerprint is the one of the files without those later
        revisions' files (so every other file, ``env.py`` included, must be
        as it was). Loads the revisions (a build does anyway).
        """
        heads = self.heads()
        if len(heads) != 1:
            return []
        script = self.project.script
        revisions = {rev.revision: rev for rev in script.walk_revisions("base", "heads")}
        # What each revision comes after (down_revision, depends_on), and before.
        parents = {
            name: {
                script.get_revision(parent).revision
                for parent in (*_names(rev.down_revision), *_names(rev.dependencies))
            }
            for name, rev in revisions.items()
        }
        children: dict[str, set[str]] = {name: set() for name in revisions}
        for name, before in parents.items():
            for parent in before:
                children[parent].add(name)
        files = self.project.schema_files()
        contents: dict[str, bytes] = {}
        earlier: list[Earlier] = []
        for name in _reachable(heads[0], parents)[1 : EARLIER_HEADS + 1]:  # nearest first
            after = _reachable(name, children)
            if len(after) + len(_reachable(name, parents)) - 1 != len(revisions):
                continue  # a later revision branches off below it: a build from base runs it earlier
            left_out = {os.path.abspath(revisions[rev].path) for rev in after[1:]}
            kept = [path for path in files if os.path.abspath(path) not in left_out]
            earlier.append(Earlier(self._fingerprint_of(kept, contents), name))
        return earlier

    def heads(self) -> tuple[str, ...]:
        """The head revisions (loads every revision): refused unless there is one."""
        try:
            heads = self.project.heads()
        except MigrationFailure as failure:
            raise MigrationError(str(failure)) from None
        if len(heads) > 1:
            raise MigrationError(
                f"the migrations in {self.project.location} have several heads "
                f"({', '.join(sorted(heads))}): merge them first with "
                "'flask db merge heads' or 'alembic merge heads'."
            )
        return tuple(heads)

    def build(self, app: Flask, extension: Extension, engines: t.Mapping[BindKey, Engine]) -> None:
        heads = self._heads = self.heads()
        url = engines[None].url
        try:
            tables = self.project.migrate(app, extension, engines)
        except MigrationFailure as failure:
            raise MigrationError(f"migrating {mask_url(url)} to head failed: {failure}") from None
        if heads and not reached(engines[None], tables):
            # An env.py that builds its own engine from sqlalchemy.url migrates
            # a second, empty in-memory database instead of the app's.
            raise MigrationError(
                f"the migrations in {self.project.location} did not reach {mask_url(url)}: "
                "for in-memory SQLite, env.py must use config.attributes['connection'] "
                "(Alembic's 'sharing a connection' recipe) or current_app's db.engine."
            )


#: How many revisions nearest the head a build looks for a template of (see
#: :meth:`AlembicSchema.earlier_fingerprints`).
EARLIER_HEADS = 10


def _reachable(start: str, edges: t.Mapping[str, t.Iterable[str]]) -> list[str]:
    """``start``, then every revision reachable from it along ``edges``, nearest first."""
    found, order = {start}, [start]
    for name in order:  # grows while read: breadth first
        for following in sorted(edges[name]):
            if following not in found:
                found.add(following)
                order.append(following)
    return order


def _names(value: str | t.Sequence[str] | None) -> tuple[str, ...]:
    """Alembic's one-or-several revision names (``down_revision``, ``depends_on``) as a tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


#: One schema per Alembic project: its fingerprint is computed once per process.
_alembic_schemas: dict[AlembicProject, AlembicSchema] = {}


def schema_source(setting: AlembicSetting, app: Flask, extension: Extension, owner: str) -> SchemaSource:
    """Turn the ``alembic_config`` class attribute of ``owner`` (a class's name) into a :class:`SchemaSource`."""
    if setting is False:
        return CreateAllSchema(extension, owner)
    project = alembic_project(None if setting is True else setting, app)
    schema = _alembic_schemas.get(project)
    if schema is None:
        schema = _alembic_schemas[project] = AlembicSchema(project)
    return schema
