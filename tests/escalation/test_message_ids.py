"""Signed Message-IDs prove which ticket a reply answers; their key is written safely and never weak."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.app import App
from bot.audit import KEY_BYTES, load_or_create_key, secret_key
from escalation.mail import MessageIds
from common.errors import ConfigError

IDS = MessageIds(b"s" * 32, "vraagbaak.example.be")


def _tamper(message_id: str, part: int) -> str:
    """Change one character of a dot-separated part (1: kind, 2: nonce, 3: mac) of a signed id."""
    local, domain = message_id.strip("<>").split("@")
    parts = local.split(".")
    value = parts[part]
    parts[part] = value[:-1] + ("0" if value[-1] != "0" else "1") if part != 1 else "reminder"
    return f"<{'.'.join(parts)}@{domain}>"


def test_a_signed_id_verifies_and_any_change_to_it_does_not() -> None:
    message_id = IDS.new(42, "question")
    assert IDS.verify(message_id) == 42
    assert IDS.verify(message_id.upper()) == 42  # clients may change the case of the hex digits
    for part in (1, 2, 3):
        assert IDS.verify(_tamper(message_id, part)) is None
    assert IDS.verify(message_id.replace("vb-42.", "vb-43.")) is None  # another ticket's number, same MAC
    assert MessageIds(b"t" * 32, "vraagbaak.example.be").verify(message_id) is None  # another key


def test_ids_that_are_not_ours_are_refused() -> None:
    assert IDS.verify("<CAF123@mail.gmail.com>") is None
    assert IDS.verify("<vb-12.question.0011aabb@vraagbaak.example.be>") is None  # no MAC at all


def test_a_key_file_is_created_once_with_mode_600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "mail.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES and load_or_create_key(path) == key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["mail.key"]  # no temporary file left


@pytest.mark.parametrize("content", ["", "\n", "abcd", "zz" * 32])
def test_an_empty_short_or_garbled_key_file_is_an_error(tmp_path: Path, content: str) -> None:
    # An empty file is what a crash between creating and writing the key used to leave.
    path = tmp_path / "mail.key"
    path.write_text(content)
    with pytest.raises(ConfigError, match="mail.key"):
        load_or_create_key(path)


def test_workers_on_two_machines_share_the_keys_of_the_environment(tmp_path: Path) -> None:
    """An expert answers a mail worker A sent; worker B, which polls the mailbox, must recognise the reference."""
    key = "ab" * KEY_BYTES
    apps = [App.from_env({"VRAAGBAAK_HOME": str(tmp_path / name), "VRAAGBAAK_MAIL_KEY": key,
                          "VRAAGBAAK_PSEUDONYM_KEY": key}) for name in ("a", "b")]
    reference = apps[0].tickets.ids.new(7, "question")
    assert apps[1].tickets.ids.verify(reference) == 7
    assert apps[0].audit.pseudonym("telegram", "42") == apps[1].audit.pseudonym("telegram", "42")
    assert not list((tmp_path / "a").glob("*.key"))  # nothing written next to the data

    # Without the variables each data dir makes its own key: one worker does not know the other's mail.
    alone = [App.from_env({"VRAAGBAAK_HOME": str(tmp_path / name)}) for name in ("c", "d")]
    assert alone[1].tickets.ids.verify(alone[0].tickets.ids.new(7, "question")) is None


@pytest.mark.parametrize("value", ["zz" * KEY_BYTES, "ab" * (KEY_BYTES - 1)])
def test_a_bad_key_in_the_environment_is_named_but_not_shown(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="VRAAGBAAK_MAIL_KEY") as caught:
        secret_key("mail", tmp_path, {"VRAAGBAAK_MAIL_KEY": value})
    assert value not in str(caught.value)
