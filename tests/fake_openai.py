"""A real HTTP server on loopback that speaks just enough of the OpenAI chat completions API for tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    """Header names in lower case (HTTP header names are case-insensitive)."""
    body: dict[str, Any] | None

    def prompt(self) -> str:
        """Every message's content joined: what the model was shown."""
        messages = (self.body or {}).get("messages", [])
        return "\n".join(str(m.get("content", "")) for m in messages)


@dataclass
class FakeOpenAI:
    """Answers POST /v1/chat/completions the way each test asks: a reply, an HTTP error, garbage or silence."""

    content: str = "Antwoord [1]."
    status: int = 200
    raw_body: bytes | None = None
    """Sent as-is (with ``raw_content_type``) instead of a completion, to play a broken endpoint."""
    raw_content_type: str = "application/json"
    delay: float = 0.0
    """Seconds to wait before answering; the wait ends early when the server stops."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` a client should use (ends in /v1)."""
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @contextmanager
    def running(self) -> Iterator["FakeOpenAI"]:
        """Serve on a free loopback port in a background thread until the block ends."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {name.lower(): value for name, value in self.headers.items()}
                fake.requests.append(RecordedRequest(self.path, headers, body))
                if self.path not in CHAT_PATHS:
                    self._send(404, json.dumps({"error": {"message": "not found"}}).encode(), "application/json")
                    return
                if fake.delay and fake._release.wait(fake.delay):
                    return  # shutting down: the client gave up long ago
                if fake.raw_body is not None:
                    self._send(fake.status, fake.raw_body, fake.raw_content_type)
                elif fake.status != 200:
                    error = {"error": {"message": "boom", "type": "server_error"}}
                    self._send(fake.status, json.dumps(error).encode(), "application/json")
                else:
                    model = (body or {}).get("model", "fake")
                    self._send(200, json.dumps(completion(fake.content, model)).encode(), "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)


def completion(content: str, model: str) -> dict[str, Any]:
    """A minimal, valid chat.completion response body."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
