"""The one way an engine is built for the deployment's database (tickets, shared worker state, the index)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

# SQLAlchemy is imported where an engine is built: reading settings must not pay for it (`vraagbaak --help`).

logger = logging.getLogger(__name__)


def database_url(home: Path, env: Mapping[str, str]) -> str:
    """``VRAAGBAAK_DATABASE_URL``, or SQLite in the data dir."""
    return env.get("VRAAGBAAK_DATABASE_URL") or f"sqlite:///{home / 'tickets.sqlite'}"


CONNECT_TIMEOUT_SECONDS = 5

SMALL_POOL = {"pool_size": 2, "max_overflow": 4}
"""For a component with short statements (the question log, the Telegram access list): a worker's threads need
a few connections, not the default 5 + 10 each, next to the tickets' and the shared state's pools."""


def database_engine(url: str, **options: Any) -> sa.engine.Engine:
    """An engine for ``url`` (sqlite:///... or postgresql+psycopg://...)."""
    import sqlalchemy as sa

    if not url.startswith("sqlite"):
        if url.startswith("postgresql"):
            # A database host that does not answer must not hold a worker thread for libpq's unbounded default.
            options.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
        return sa.create_engine(url, future=True, **options)
    # Worker threads (asyncio.to_thread: the core, the escalation steps, the channels' checks) share it; SQLite
    # waits for a writer instead of failing at once. A file is always there: a connection needs no pre-ping.
    options["connect_args"] = {"check_same_thread": False, "timeout": 30}
    options.pop("pool_pre_ping", None)
    if sa.engine.make_url(url).database in (None, "", ":memory:"):
        options["poolclass"] = sa.pool.StaticPool  # one connection: each new one would be an empty database
        options.pop("pool_size", None)
        options.pop("max_overflow", None)
    engine = sa.create_engine(url, future=True, **options)
    if engine.url.database and engine.url.database != ":memory:":
        sa.event.listen(engine, "connect", _write_ahead_log)
    return engine


def _write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    """WAL: readers do not wait for a writer and a commit writes one log instead of a journal and the file (each
    message of every officer commits a few rows of shared state). Durability stays: synchronous stays FULL."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


SCHEMA_LOCK_KEY = 7243012
"""PostgreSQL advisory lock held while a component creates its tables (the ticket migrations use 7243011)."""


def create_tables(engine: sa.engine.Engine, metadata: sa.MetaData) -> None:
    """Create the missing tables of ``metadata``; safe when several workers start at the same moment.

    PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against itself: two workers both find the table missing,
    and the second fails on a unique violation in the catalogue. One transaction under an advisory lock orders them.
    """
    import sqlalchemy as sa

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        metadata.create_all(conn)


def open_database(url: str, metadata: sa.MetaData, *, then: Callable[[sa.engine.Engine], None] | None = None,
                  **options: Any) -> sa.engine.Engine:
    """An engine for ``url`` with the tables of ``metadata`` created, and ``then`` run on it (a merge of an earlier
    version's file); a database that cannot be opened is a ConfigError that names it without its password."""
    from sqlalchemy.exc import SQLAlchemyError

    engine = database_engine(url, **options)
    try:
        create_tables(engine, metadata)
        if then is not None:
            then(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigError(f"the database {shown_url(url)} (VRAAGBAAK_DATABASE_URL) cannot be opened: "
                          f"{type(getattr(exc, 'orig', None) or exc).__name__}") from None
    return engine


def merge_legacy_file(what: str, path: Path | None,
                      merge: Callable[[sa.engine.Engine, Path], None]) -> Callable[[sa.engine.Engine], None]:
    """``then`` for ``open_database``: merge an earlier version's SQLite file of ``what`` at ``path``; a failure
    (another process merging it at the same moment, a damaged file) is logged and tried again at the next start."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    def then(engine: sa.engine.Engine) -> None:
        if path is None:
            return
        try:
            merge(engine, path)
        except (SQLAlchemyError, OSError, sqlite3.Error) as exc:  # the file stays; the worker starts all the same
            logger.error("the %s of %s was not merged into the database (%s); the file is left as it is and the "
                         "merge is tried again at the next start", what, path, type(exc).__name__)

    return then


def delete_sqlite_file(path: Path) -> None:
    """Delete a SQLite file with its write-ahead log, shared-memory index and rollback journal."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


MERGE_LOCK_KEY = 7243013
"""PostgreSQL advisory lock held while an earlier version's file is merged (one merge at a time)."""


def lock_for_merge(conn: sa.engine.Connection) -> None:
    """Make the merges of several workers' files run one after the other: each reads what the others wrote.

    PostgreSQL: a transaction-level advisory lock. SQLite: a write that changes nothing, so the transaction holds
    the write lock before its first read (pysqlite would otherwise read outside it).
    """
    import sqlalchemy as sa

    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MERGE_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS merge_lock (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("DELETE FROM merge_lock"))


def shown_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say nothing of it
        return "(unparsable URL)"
