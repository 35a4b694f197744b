"""A real `chroma run` server on a free loopback port, for one test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chroma_command() -> str | None:
    """The `chroma` command chromadb installs next to this interpreter, if it is there."""
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    return exe if Path(exe).exists() else None


@contextmanager
def running_chroma(data: Path) -> Iterator[str]:
    """`chroma run` on a free loopback port with its data in ``data``; yields its URL, stops it at the end."""
    exe = chroma_command()
    if exe is None:
        raise RuntimeError("the chroma command (from chromadb) is not installed")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chroma run did not start listening within 30 s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """The URL of a Chroma server with its data under ``tmp_path``; stopped after the test."""
    if chroma_command() is None:
        pytest.skip("the chroma command (from chromadb) is not installed")
    with running_chroma(tmp_path / "chroma-server") as url:
        yield url
