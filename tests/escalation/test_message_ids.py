"""Signed Message-IDs prove which ticket a reply answers; their key is written safely and never weak."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.audit import KEY_BYTES, load_or_create_key
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
