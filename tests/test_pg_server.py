"""The throwaway PostgreSQL cluster: SQLAlchemy round trip, per-test databases, password auth."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, inspect, select, text

from tests.pg_server import _libpq_uri


def _notes_table(metadata: MetaData) -> Table:
    return Table("notities", metadata,
                 Column("id", Integer, primary_key=True),
                 Column("vraag", Text, nullable=False))


def test_sqlalchemy_round_trip_in_a_fresh_database(pg_database_url: str) -> None:
    engine = create_engine(pg_database_url)
    try:
        metadata = MetaData()
        notes = _notes_table(metadata)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(notes.insert(), [{"vraag": "Wat is een innovatiepartnerschap?"},
                                          {"vraag": "Mag een gemeente een précommerciële aankoop doen?"}])
        with engine.connect() as conn:
            rows = conn.execute(select(notes.c.vraag).order_by(notes.c.id)).scalars().all()
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            version = conn.execute(text("SHOW server_version_num")).scalar_one()
    finally:
        engine.dispose()
    assert rows == ["Wat is een innovatiepartnerschap?", "Mag een gemeente een précommerciële aankoop doen?"]
    assert database == urlsplit(pg_database_url).path.lstrip("/")
    assert database.startswith("vraagbaak_t_")
    assert int(version) >= 130000  # DROP DATABASE ... WITH (FORCE) in the fixture needs 13+


@pytest.mark.parametrize("question", ["Wat is een raamovereenkomst?", "Wat is een concurrentiedialoog?"])
def test_each_test_gets_its_own_empty_database(pg_database_url: str, postgres_url: str, question: str) -> None:
    # Run twice: whichever runs second would find the first one's table and row if databases were shared.
    engine = create_engine(pg_database_url)
    try:
        assert not inspect(engine).has_table("notities")
        metadata = MetaData()
        notes = _notes_table(metadata)
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(notes.insert(), {"vraag": question})
        with engine.connect() as conn:
            assert conn.execute(select(notes.c.vraag)).scalars().all() == [question]
    finally:
        engine.dispose()

    # Earlier tests' databases were dropped at their teardown; only this test's own one is left.
    with psycopg.connect(_libpq_uri(postgres_url)) as admin:
        names = [row[0] for row in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'vraagbaak\\_t\\_%' ORDER BY datname")]
    assert names == [urlsplit(pg_database_url).path.lstrip("/")]


def test_session_database_exists_and_a_wrong_password_is_refused(postgres_url: str) -> None:
    parts = urlsplit(postgres_url)
    assert parts.hostname == "127.0.0.1" and parts.path == "/vraagbaak_test"
    with psycopg.connect(_libpq_uri(postgres_url)) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("vraagbaak_test",
                                                                                      "vraagbaak")
    wrong = parts._replace(netloc=f"{parts.username}:niet-het-wachtwoord@{parts.hostname}:{parts.port}")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_libpq_uri(wrong.geturl()), connect_timeout=5)
