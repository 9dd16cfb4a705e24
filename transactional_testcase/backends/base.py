"""The :class:`Backend` strategy every vendor module fills in, and the helpers they share.

A backend answers every question whose answer depends on the kind of
database server (how to create, clone, lock, empty or check a database), so
the rest of the library never branches on a dialect name. Each hook below
says what it is for; the vendor modules (:mod:`.sqlite`, :mod:`.postgresql`,
:mod:`.mysql`) override those that differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import threading
import time
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from .._compat import socket_fileno
from ..errors import ConfigurationError
from .drivers import unreachable

#: ``(schema, table)``: None is the connection's default schema.
TableRef: t.TypeAlias = tuple[str | None, str]
#: Empties tables through the connection it is given; returns the tables it emptied.
TableEmptier: t.TypeAlias = t.Callable[[Connection], list[str]]

#: Checks, at the end of a test, what a COMMIT would; describes violations (None: none).
ConstraintChecker: t.TypeAlias = t.Callable[[Connection], str | None]


class Backend:
    """How one kind of database server is provisioned and isolated."""

    #: Human name used in messages.
    title: t.ClassVar[str] = "database"
    #: Environment variable documented as the way to point tests at this backend.
    env_hint: t.ClassVar[str] = "TEST_DATABASE_URL"
    #: Statements that commit the transaction implicitly on this backend.
    implicit_commit: t.ClassVar[re.Pattern[str] | None] = None
    #: Whether a class's idle connections are worth handing on to the next
    #: class (opening one costs a server process or a login).
    keeps_connections: t.ClassVar[bool] = False
    #: Whether an idle connection can be lost between two classes (a server
    #: restart): those an engine hands on are checked first.
    can_lose_connections: t.ClassVar[bool] = True
    #: Whether a test's first savepoint may be its transaction's start (see
    #: :meth:`transaction_untouched`): saves round trips to a server, nothing
    #: in-process.
    spares_savepoints: t.ClassVar[bool] = False
    #: Whether a database is a file named by its path: its folder, not a
    #: server, tells two projects' databases (and their templates) apart.
    is_file: t.ClassVar[bool] = False
    #: Why a connection failed, by the DBAPI error's code (SQLSTATE, or the
    #: server's error number): ``auth``, ``missing`` or ``permission``.
    connect_failures: t.ClassVar[t.Mapping[str, str]] = {}
    #: Whether :meth:`reset_session` makes an idle connection like a new one:
    #: then it may go to a class whose app set its sessions up otherwise.
    resets_sessions: t.ClassVar[bool] = False
    #: Whether a database built in a run can become its own template when the
    #: run no longer needs it (:meth:`snapshot`, :meth:`rename_to_template`):
    #: one cheap rename instead of a copy after the build and a drop at exit.
    renames_to_templates: t.ClassVar[bool] = False

    def database_name(self, url: URL) -> str:
        """The name whose ``test`` marker makes a database safe to drop."""
        return url.database or ""

    def name_limit(self, name: str) -> str | None:
        """Why the server cannot take ``name`` as a database name as it is; None when it can.

        .. versionadded:: 0.5
        """
        return None

    def is_memory(self, url: URL) -> bool:
        """True for databases that live only inside one connection pool."""
        return False

    def with_suffix(self, url: URL, suffix: str) -> URL:
        """``url`` with ``suffix`` added to its database's name (a parallel worker's own copy)."""
        return url.set(database=f"{url.database or ''}{suffix}")

    def prepare_engine(self, engine: Engine) -> None:
        """Make ``engine`` safe for SAVEPOINT-based isolation (idempotent)."""

    def reset_session(self, dbapi_connection: t.Any) -> None:
        """Make an idle connection kept for the next class look freshly opened."""

    def ping(self, dialect: t.Any, dbapi_connection: t.Any) -> bool:
        """Whether an idle connection kept from an earlier class still works; raises if not.

        A server that closed an idle connection (a restart, a terminated
        session) has sent something: only a connection whose socket has data
        waiting, or whose driver does not show its socket, costs a round trip.

        .. versionchanged:: 0.2
           No round trip for a connection whose socket is quiet.
        """
        if quiet_socket(dbapi_connection):
            return True
        return self._round_trip_ping(dialect, dbapi_connection)

    def _round_trip_ping(self, dialect: t.Any, dbapi_connection: t.Any) -> bool:
        return bool(dialect.do_ping(dbapi_connection))

    def transaction_untouched(self, dbapi_connection: t.Any) -> bool | None:
        """Whether nothing was sent since the connection's transaction began.

        Read from the driver, without a round trip; None where it cannot
        tell (the library then counts the statements it sees). Then a
        savepoint would mark the transaction's start, which costs nothing to
        return to (a ROLLBACK).
        """
        return None

    def recreate(self, url: URL) -> None:
        """Drop the database ``url`` names if it exists, then create it empty."""
        raise NotImplementedError

    def drop(self, url: URL) -> None:
        """Drop the database ``url`` names, if it exists."""
        raise NotImplementedError

    def template_url(self, url: URL, name: str) -> URL:
        """Where the migrated template called ``name`` lives, next to ``url``."""
        return url.set(database=name)

    def save_template(self, url: URL, template: URL, engine: Engine, label: str = "") -> None:
        """Copy the freshly migrated database ``url`` to ``template`` (all or nothing).

        ``label`` (see :func:`make_label`) is kept with the template, for
        ``python -m transactional_testcase list``.
        """
        raise NotImplementedError

    def snapshot(self, engine: Engine) -> t.Any:
        """What the freshly built database ``engine`` points at is, for :meth:`rename_to_template`.

        None: it cannot be compared later (a table this role cannot read);
        its template is then saved as a copy at once.

        .. versionadded:: 0.5
        """
        return None

    def rename_to_template(self, url: URL, template: URL, snapshot: t.Any, label: str) -> str | None:
        """Rename the database ``url`` to ``template`` if it is as :meth:`snapshot` saw it.

        Nobody may be connected to it. Counters the tests advanced are set
        back first. Returns None once renamed, else why it was not (the
        caller drops it): something committed since, or an error.

        .. versionadded:: 0.5
        """
        return f"{self.title} databases cannot be renamed"

    def has_template(self, template: URL, url: URL) -> bool:
        """Whether a complete template exists at ``template``.

        ``url`` is the database it would be cloned into: the one an error names
        (a user configured ``url``, not the template).
        """
        raise NotImplementedError

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        """Replace the database ``url`` by a copy of ``template``."""
        raise NotImplementedError

    def template_names(self, url: URL, prefix: str) -> list[str]:
        """The names of the templates named ``prefix*`` on ``url``'s server (SQLite: the cache folder).

        Complete or not (see :meth:`has_template`).

        .. versionadded:: 0.6
        """
        return []

    def drop_templates(self, template: URL, prefix: str) -> list[str]:
        """Drop templates named ``prefix*`` other than ``template`` (stale fingerprints); their names."""
        return []

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        """The fingerprint a kept database was built from, if it exists.

        Read through the app's own ``engine``: on a warm run its connection is
        the one the tests then use, not one more to open.
        """
        return None

    def write_marker(self, url: URL, fingerprint: str, source: str = "") -> None:
        """Remember which fingerprint ``url`` was built from (``keepdb``), and from what ``source``."""

    # -- what the library left on a server (python -m transactional_testcase) ------

    def inventory(self, url: URL) -> list[Leftover]:
        """The templates and kept databases this library left on ``url``'s server (SQLite: its cache)."""
        return []

    def drop_leftover(self, leftover: Leftover) -> None:
        """Drop one of :meth:`inventory`'s leftovers (refused unless it is one).

        On a server, without FORCE: a database someone is connected to (a run
        cloning this template right now) is refused, not pulled from under them.
        """
        with self.admin_connection(leftover.url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(leftover.name)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        """Hold a lock shared by every process that may build template ``name``."""
        yield

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        """Plan, once per class, emptying ``tables`` and resetting their counters.

        The returned callable does it through the connection it is given and
        returns the tables it emptied (for ``CommittingTestCase``).
        """
        raise ConfigurationError(f"emptying tables is not supported on {self.title}")

    def constraint_checker(self, connection: Connection) -> ConstraintChecker | None:
        """Plan, once per class, checking what a real COMMIT would check.

        The returned callable runs at the end of a test that wrote, on the
        test's connection, and describes the violations it finds (None: none).
        None means there is nothing a COMMIT would check that a statement has
        not already checked (no deferred constraints): the test pays nothing.
        """
        return None

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        """Return a callable that sets every sequence to ``max(id) + 1``."""
        raise ConfigurationError(
            f"reset_sequences = True is not supported on {self.title}: its "
            "auto-increment counters cannot be reset inside a transaction (the "
            "statement that does it commits implicitly). Set reset_sequences = False "
            "and compare ids to the objects you created instead of literal numbers."
        )

    # -- helpers shared by the server backends ---------------------------------

    def _admin_urls(self, url: URL) -> list[URL]:
        return [url]

    def connect_failure(self, exc: BaseException) -> str:
        """Why connecting failed: ``auth``, ``missing``, ``permission`` or ``unreachable``.

        By the error's code where the driver gives one, else by the words
        every server uses for these (the driver's message may be localised
        only in its tail).
        """
        orig = getattr(exc, "orig", None) or exc
        kind = self.connect_failures.get(self.error_code(orig) or "")
        if kind is not None:
            return kind
        text = str(orig).lower()
        for kind, pattern in _FAILURE_WORDS:
            if pattern.search(text):
                return kind
        return "unreachable"

    def error_code(self, dbapi_error: BaseException) -> str | None:
        """The DBAPI error's code, as :attr:`connect_failures` keys it."""
        return None

    @contextlib.contextmanager
    def admin_connection(self, url: URL, named: URL | None = None) -> t.Iterator[Connection]:
        """An AUTOCOMMIT connection to the server, outside the test database.

        If the server cannot be reached, the error names ``named`` (default
        ``url``): the database the user configured rather than a template.
        Inside :func:`admin_session`, one connection per server serves every
        step (and the locks held meanwhile).
        """
        admin_urls = self._admin_urls(url)
        session = _AdminSession.current()
        if session is None:
            conn = self._connect_admin(admin_urls, named or url)
            try:
                with conn:
                    yield conn
            finally:
                conn.engine.dispose()
            return
        server = admin_urls[0].render_as_string(hide_password=False)
        shared = session.connections.get(server)
        if shared is not None and not shared.closed and not shared.invalidated:
            conn = shared
        else:
            conn = self._connect_admin(admin_urls, named or url)
            session.keep(server, conn)
        try:
            yield conn
        finally:
            # AUTOCOMMIT: nothing to undo on the server, only SQLAlchemy's
            # own transaction state to clear for the next step.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.rollback()

    def _connect_admin(self, admin_urls: list[URL], named: URL) -> Connection:
        """A connection to the first of ``admin_urls`` that accepts one."""
        last: Exception | None = None
        for admin_url in admin_urls:
            engine = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            try:
                return engine.connect()
            except sa.exc.OperationalError as exc:
                engine.dispose()
                last = exc
        assert last is not None
        raise unreachable(named, last, self) from None


class _AdminSession:
    """The admin connections the steps of one provisioning share, one per server.

    A new connection costs a server process or a TLS handshake (PyMySQL: tens
    of milliseconds each), and a provisioning takes several steps: check the
    template, lock, create, migrate, save, drop the stale ones.
    """

    _local = threading.local()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.connections: dict[str, Connection] = {}

    @classmethod
    def current(cls) -> _AdminSession | None:
        """This thread's session, None outside one (or in a child forked inside one)."""
        session: _AdminSession | None = getattr(cls._local, "session", None)
        return session if session is not None and session.pid == os.getpid() else None

    def keep(self, server: str, conn: Connection) -> None:
        """Share ``conn`` for ``server`` (closing the broken one it replaces)."""
        broken = self.connections.get(server)
        self.connections[server] = conn
        if broken is not None:
            _close_quietly(broken)

    def close(self) -> None:
        for conn in self.connections.values():
            _close_quietly(conn)
        self.connections.clear()


def _close_quietly(conn: Connection) -> None:
    """Close an admin connection and its engine; a server gone meanwhile is no error."""
    with contextlib.suppress(Exception):
        conn.close()
    conn.engine.dispose()


@contextlib.contextmanager
def admin_session() -> t.Iterator[None]:
    """Within it, :meth:`Backend.admin_connection` opens one connection per server, closed at the end.

    Nested, the outermost session serves.
    """
    if _AdminSession.current() is not None:
        yield
        return
    session = _AdminSession._local.session = _AdminSession()
    try:
        yield
    finally:
        _AdminSession._local.session = None
        session.close()


# -- helpers the vendor modules share -------------------------------------------

#: Names every template: ``tt_tpl_<database>_<owner>_<fingerprint>_test``.
TEMPLATE_NAME = re.compile(r"^tt_tpl_[a-z0-9_]+_test$")
#: What a label says it was made by.
_LABEL_BY = "transactional_testcase"
#: A kept database's marker before labels (0.4): the bare fingerprint.
_BARE_MARKER = re.compile(r"^(?:[0-9a-f]{64}|invalidated)$")
#: Long enough for a path; MariaDB keeps 1024 characters of a schema comment.
_SOURCE_LIMIT = 400


class Label(t.NamedTuple):
    """What the library writes on a template and on a kept database (its marker)."""

    fingerprint: str
    #: Where the schema came from: ``alembic /path/migrations, to head abc``, ``db.create_all()``.
    source: str
    #: When it was made (seconds since the epoch); None for a database labelled before 0.4.
    made: float | None


class Leftover(t.NamedTuple):
    """A template or kept database this library made, as ``python -m transactional_testcase list`` shows it."""

    #: ``template`` or ``kept``.
    kind: str
    #: The database's name (SQLite: the file's path).
    name: str
    url: URL
    source: str
    #: Bytes, None where the server would not tell.
    size: int | None
    made: float | None


def make_label(fingerprint: str, source: str) -> str:
    """The text stored with a template or as a kept database's marker (JSON, one line)."""
    if len(source) > _SOURCE_LIMIT:
        source = "..." + source[-_SOURCE_LIMIT:]
    text = json.dumps(
        {"by": _LABEL_BY, "fingerprint": fingerprint, "source": source, "made": int(time.time())},
        separators=(",", ":"),
    )
    # No '%' in it, escaped or not: drivers that format parameters (psycopg2,
    # PyMySQL) read one in a statement, DDL included.
    return text.replace("%", "\\u0025")


def parse_label(text: str | None) -> Label | None:
    """The :class:`Label` ``text`` holds; None when this library did not write it."""
    if not text:
        return None
    text = text.strip()
    if _BARE_MARKER.match(text):
        return Label(text, "", None)
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("by") != _LABEL_BY:
        return None
    made = data.get("made")
    return Label(
        str(data.get("fingerprint", "")),
        str(data.get("source", "")),
        float(made) if isinstance(made, int | float) else None,
    )


def sql_literal(connection: Connection, text: str) -> str:
    """``text`` as a string literal of ``connection``'s dialect (for DDL, which takes no parameters)."""
    if connection.dialect.name in ("mysql", "mariadb"):
        text = text.replace("\\", "\\\\")  # a backslash escapes in MySQL's strings
    return "'" + text.replace("'", "''") + "'"


#: What the servers say (PostgreSQL, MySQL/MariaDB) when the server answered
#: but refused: checked in order, the first match tells why.
_FAILURE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("auth", re.compile(r"authentication failed|access denied for user|role \S+ does not exist")),
    ("missing", re.compile(r"database \S+ does not exist|unknown database")),
    ("permission", re.compile(r"permission denied|access denied")),
)


def reflect_tables(
    connection: Connection, schemas: t.Iterable[str | None], keep: t.Container[str]
) -> list[TableRef]:
    """Every table of ``schemas`` (None: the default schema) but those named in ``keep``."""
    inspector = sa.inspect(connection)
    found: list[TableRef] = []
    for schema in schemas:
        for name in inspector.get_table_names(schema=schema):
            if name not in keep:
                found.append((schema, name))
    return found


def model_schemas(metadatas: t.Iterable[sa.MetaData]) -> list[str | None]:
    """The default schema, then every other schema the bind's models (``metadatas``) name."""
    named = {table.schema for metadata in metadatas for table in metadata.tables.values()}
    return [None, *sorted(s for s in named if s is not None)]


def quiet_socket(dbapi_connection: t.Any) -> bool | None:
    """Whether nothing waits to be read on an idle connection's socket.

    An idle connection receives nothing until the server closes it (a restart,
    a terminated session, a timeout). None, meaning "ask the server", when
    the socket cannot be seen.
    """
    fd = socket_fileno(dbapi_connection)
    if fd is None or fd < 0:
        return None
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # POLLHUP and POLLERR are always reported


def quoted_names(connection: Connection, tables: t.Sequence[TableRef]) -> list[str]:
    """``tables`` as the connection's dialect quotes them, schema-qualified where named."""
    preparer = connection.dialect.identifier_preparer
    return [
        (f"{preparer.quote_schema(schema)}." if schema else "") + preparer.quote(name)
        for schema, name in tables
    ]


def query_marker(engine: Engine, statement: str) -> str | None:
    """The fingerprint ``statement`` reads through ``engine``; None if it cannot be read."""
    try:
        with engine.connect() as conn:
            text = conn.exec_driver_sql(statement).scalar() or None
    except sa.exc.DBAPIError:
        # No such database yet (or no server: provisioning then says so).
        return None
    label = parse_label(text)
    return label.fingerprint if label is not None else None


def empty_nothing(connection: Connection) -> list[str]:
    """The :data:`TableEmptier` of a class with no tables to empty."""
    return []


def reset_nothing(connection: Connection) -> None:
    """The sequence resetter of a database without counters to reset."""
    return None
