"""Who may use the Telegram bot, as stored: invites, redemptions, revocations, and the `vraagbaak telegram` commands."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot.channels.telegram_access import LEGACY_FILE, TelegramAccess
from bot.cli import main
from common.database import database_url

AN, BERT, CHLOE = 1001, 1002, 1003
DAY = 86400


def _clock(start: float = 1_000_000.0) -> list[float]:
    return [start]


def _sqlite(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _second_version_file(path: Path) -> sqlite3.Connection:
    """An access file with the schema the second version wrote (invites with ids, redemptions, revocations)."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE invites (id INTEGER PRIMARY KEY AUTOINCREMENT, code_hash TEXT NOT NULL UNIQUE,
                              created_at REAL NOT NULL, expires_at REAL NOT NULL,
                              uses_left INTEGER NOT NULL CHECK (uses_left >= 0), invalidated_at REAL);
        CREATE TABLE members (user_id INTEGER PRIMARY KEY, joined_at REAL NOT NULL);
        CREATE TABLE redemptions (invite_id INTEGER NOT NULL REFERENCES invites (id), user_id INTEGER NOT NULL,
                                  redeemed_at REAL NOT NULL);
        CREATE TABLE revocations (user_id INTEGER PRIMARY KEY, revoked_at REAL NOT NULL);
    """)
    return db


def _deployment(home: Path) -> TelegramAccess:
    """The access list as `vraagbaak serve` and the `telegram` commands open it: in the deployment's database."""
    return TelegramAccess(database_url(home, {}))


def test_a_revoked_officer_needs_an_invite_created_after_the_revocation(home: Path) -> None:
    now = _clock()
    access = TelegramAccess(_sqlite(home / "access.sqlite"), clock=lambda: now[0])
    old = access.create_invite(uses=3)
    now[0] += 60
    assert access.redeem(old.code, AN)
    now[0] += 60
    other = access.create_invite(uses=1)  # never used by An, but also made before the revocation
    now[0] += 60
    assert access.revoke(AN) and not access.is_allowed(AN)
    assert not access.redeem(old.code, AN) and not access.redeem(other.code, AN) and not access.is_allowed(AN)
    assert [i.uses_left for i in access.invites()] == [2, 1]  # a refused attempt uses nothing up
    now[0] += 60
    new = access.create_invite(uses=1)
    assert access.redeem(new.code, AN) and access.is_allowed(AN)
    assert access.revoke(AN)
    now[0] += 60
    assert not access.redeem(new.code, AN) and not access.redeem(old.code, AN)  # revoked again: again for good
    assert access.redeem(old.code, BERT)  # the old invite still works for someone never revoked


def test_an_invalidated_invite_admits_nobody(home: Path) -> None:
    access = TelegramAccess(_sqlite(home / "access.sqlite"))
    invite = access.create_invite(uses=5)
    assert access.redeem(invite.code, AN)
    [listed] = access.invites()
    assert access.invalidate(listed.id)
    assert not access.redeem(invite.code, BERT) and not access.is_allowed(BERT)
    assert access.is_allowed(AN)  # who already joined stays: revoke them on their own
    [listed] = access.invites()
    assert listed.state(listed.invalidated_at + 1) == "invalidated" and listed.uses_left == 4
    assert not access.invalidate(listed.id + 1)  # no such invite


def test_invites_lists_each_invite_without_its_code_and_invalidates_one(home: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["telegram", "invites"])
    assert empty.exit_code == 0 and empty.stdout == "" and "No invites" in empty.stderr
    codes = []
    for uses in ("2", "1"):
        created = runner.invoke(main, ["telegram", "invite", "--uses", uses, "--days", "3"])
        assert created.exit_code == 0, created.output
        codes.append(re.search(r"/start (\S+)", created.output).group(1))
    access = _deployment(home)
    try:
        assert access.redeem(codes[0], AN)
    finally:
        access.close()

    listed = runner.invoke(main, ["telegram", "invites"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split("\t") == ["id", "created", "expires", "uses left", "redeemed", "state"]
    first, second = (line.split("\t") for line in lines[1:])
    assert first[0] == "1" and first[3:] == ["1", "1", "valid"]
    assert second[0] == "2" and second[3:] == ["1", "0", "valid"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", first[1]) and first[2] > first[1]
    assert not any(code in listed.output for code in codes)

    invalidated = runner.invoke(main, ["telegram", "invites", "--invalidate", "2"])
    assert invalidated.exit_code == 0 and "Invite 2 can no longer be used" in invalidated.output
    assert runner.invoke(main, ["telegram", "invites"]).stdout.strip().splitlines()[2].endswith("\tinvalidated")
    access = _deployment(home)
    try:
        assert not access.redeem(codes[1], BERT)
    finally:
        access.close()
    unknown = runner.invoke(main, ["telegram", "invites", "--invalidate", "9"])
    assert unknown.exit_code != 0 and "no invite with id 9" in unknown.output


def test_an_access_file_of_the_first_version_moves_into_the_database_once(home: Path) -> None:
    path = home / LEGACY_FILE
    home.mkdir(parents=True, exist_ok=True)
    fresh = TelegramAccess(_sqlite(home / "scratch.sqlite"))  # only to make a code and its stored hash the same way
    invite = fresh.create_invite(uses=2)
    fresh.close()
    db = sqlite3.connect(home / "scratch.sqlite")
    [(code_hash,)] = db.execute("SELECT code_hash FROM telegram_invites")
    db.close()
    db = sqlite3.connect(path)  # the schema as the first version wrote it
    db.executescript("""
        CREATE TABLE invites (code_hash TEXT PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL,
                              uses_left INTEGER NOT NULL CHECK (uses_left >= 0));
        CREATE TABLE members (user_id INTEGER PRIMARY KEY, joined_at REAL NOT NULL);
    """)
    db.execute("INSERT INTO invites VALUES (?, ?, ?, ?)", (code_hash, 1.0, 4e9, 2))
    db.execute("INSERT INTO members VALUES (?, ?)", (AN, 1.0))
    db.commit()
    db.close()

    url = database_url(home, {})
    access = TelegramAccess(url, legacy=path)
    assert not path.exists()  # deleted: `telegram revoke` reaches only the database
    assert access.is_allowed(AN) and [m[0] for m in access.members()] == [AN]
    assert access.redeem(invite.code, BERT)
    [listed] = access.invites()
    assert listed.uses_left == 1 and listed.redeemed == 1
    access.close()
    again = TelegramAccess(url, legacy=path)  # no file any more: nothing changes
    assert again.is_allowed(BERT) and len(again.invites()) == 1 and len(again.members()) == 2
    again.close()


def test_an_access_file_of_the_second_version_keeps_its_redemptions_and_revocations(home: Path,
                                                                                   store_url: str) -> None:
    path = home / LEGACY_FILE
    home.mkdir(parents=True, exist_ok=True)
    db = _second_version_file(path)
    codes = {}
    for invite_id, code, invalidated in ((7, "A" * 24, None), (9, "B" * 24, 5.0)):  # ids with a gap
        codes[invite_id] = code
        db.execute("INSERT INTO invites VALUES (?, ?, 1.0, 4e9, 3, ?)",
                   (invite_id, hashlib.sha256(code.encode()).hexdigest(), invalidated))
    db.execute("INSERT INTO redemptions VALUES (7, ?, 2.0)", (AN,))
    db.execute("INSERT INTO members VALUES (?, 2.0)", (AN,))
    db.execute("INSERT INTO revocations VALUES (?, 3.0)", (CHLOE,))
    db.commit()
    db.close()

    access = TelegramAccess(store_url, legacy=path)
    first, second = access.invites()
    assert (first.redeemed, first.invalidated_at, second.redeemed, second.invalidated_at) == (1, None, 0, 5.0)
    assert access.is_allowed(AN)
    assert not access.redeem(codes[7], CHLOE)  # revoked after the invite was made: still refused
    assert not access.redeem(codes[9], BERT)  # invalidated stays invalidated
    assert access.redeem(codes[7], BERT)
    assert access.create_invite().code  # the database's own ids go on past the imported ones
    assert [i.id for i in access.invites()] == [first.id, second.id, second.id + 1]
    access.close()


def test_an_officer_admitted_through_one_worker_is_admitted_by_the_other_and_a_revocation_reaches_both(
        store_url: str) -> None:
    one, other = TelegramAccess(store_url), TelegramAccess(store_url)
    try:
        invite = one.create_invite(uses=1)
        assert not other.is_allowed(AN)
        assert one.redeem(invite.code, AN)
        assert other.is_allowed(AN) and not other.redeem(invite.code, BERT)  # its single use is spent everywhere
        assert other.revoke(AN)
        assert not one.is_allowed(AN)
    finally:
        one.close()
        other.close()


@pytest.mark.parametrize("known_seconds", [900.0, 0.0])
def test_while_the_database_is_away_an_officer_seen_admitted_is_served_and_nobody_else_is_let_in(
        home: Path, known_seconds: float) -> None:
    access = TelegramAccess(_sqlite(home / "access.sqlite"), known_seconds=known_seconds)
    invite = access.create_invite(uses=2)
    assert access.redeem(invite.code, AN) and access.is_allowed(AN)
    access.engine.dispose()
    access.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none",  # nothing listens on port 9
                                     connect_args={"connect_timeout": 2})
    if known_seconds:
        assert access.is_allowed(AN)  # confirmed a moment ago
    else:
        with pytest.raises(sa.exc.OperationalError):  # confirmed longer ago than the window: not on a guess
            access.is_allowed(AN)
    with pytest.raises(sa.exc.OperationalError):
        access.is_allowed(BERT)
    access.close()


def test_the_access_files_of_several_workers_are_merged_and_the_latest_of_admission_and_revocation_counts(
        home: Path, store_url: str) -> None:
    dirk, erik = 1004, 1005
    access = TelegramAccess(store_url)  # the list as a first worker's merge left it: An, Dirk and Erik admitted now
    invite = access.create_invite(uses=5)
    assert access.redeem(invite.code, AN) and access.redeem(invite.code, dirk) and access.redeem(invite.code, erik)
    access.close()
    home.mkdir(parents=True, exist_ok=True)
    path = home / LEGACY_FILE  # a second worker's file, a copy of the same data dir made earlier, used since
    db = _second_version_file(path)
    code_hash = hashlib.sha256(invite.code.encode()).hexdigest()
    db.execute("INSERT INTO invites VALUES (1, ?, 1.0, 4e9, 2, 6.0)", (code_hash,))  # invalidated there
    db.execute("INSERT INTO redemptions VALUES (1, ?, 3.0)", (CHLOE,))
    db.executemany("INSERT INTO members VALUES (?, ?)", [(BERT, 5.0), (CHLOE, 3.0), (dirk, 2.0), (erik, 5e9)])
    db.executemany("INSERT INTO revocations VALUES (?, ?)", [
        (AN, 4e9),  # long after An joined through the first worker: An goes
        (dirk, 1.0),  # before Dirk's admissions: Dirk stays
        (erik, 4.5e9)])  # after the first admission, before the file's later one: Erik stays
    db.commit()
    db.close()

    merged = TelegramAccess(store_url, legacy=path)
    assert not path.exists()
    assert not merged.is_allowed(AN)
    assert all(merged.is_allowed(u) for u in (BERT, CHLOE, dirk, erik))
    [kept] = merged.invites()  # the same invite in both: the stricter state, both redemption records
    assert (kept.uses_left, kept.invalidated_at, kept.redeemed) == (2, 6.0, 4)
    assert not merged.redeem(invite.code, 1006)
    merged.close()


def test_a_file_that_cannot_be_merged_is_left_as_it_is_and_the_worker_starts(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    home.mkdir(parents=True, exist_ok=True)
    path = home / LEGACY_FILE
    path.write_bytes(b"this is not a SQLite database" * 100)
    access = TelegramAccess(_sqlite(home / "access.sqlite"), legacy=path)
    assert path.exists() and "was not merged" in caplog.text
    assert access.members() == []
    access.close()
