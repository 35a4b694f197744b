"""A Telegram Bot API stand-in on loopback: real HTTP, `/bot<token>/<method>`, queued updates, recorded calls.

It checks what Telegram checks where a bug of ours would show: HTML that Telegram could not parse, messages over
4,096 characters, callback data over 64 bytes. Faults (429 with retry_after, 403, 400) and stalls (an answer that
comes too late) can be armed per method and chat. Runs its own event loop in a thread, so the bot under test and
the test itself can both talk to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAF4ke-t0ken-for-tests_only-not-real"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Vraagbaak", "username": "vraagbaak_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_CAPTION = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""What the Bot API accepts from a bot: 1,024 caption characters, 50 MB per uploaded file."""
_TEXT_PARAMS = {"text", "url", "secret_token", "callback_query_id", "action", "parse_mode", "description", "caption"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
                 "blockquote", "tg-emoji"}
_NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}


def user(user_id: int, first_name: str, last_name: str | None = None) -> dict[str, Any]:
    """A Telegram User object for a person."""
    out: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "nl"}
    if last_name:
        out["last_name"] = last_name
    return out


def private_chat(person: dict[str, Any]) -> dict[str, Any]:
    """The one-to-one chat with ``person``."""
    return {"id": person["id"], "type": "private", "first_name": person["first_name"]}


def group_chat(chat_id: int, title: str) -> dict[str, Any]:
    """A supergroup."""
    return {"id": chat_id, "type": "supergroup", "title": title}


def utf16_len(text: str) -> int:
    """Telegram measures text and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _TelegramHtml(HTMLParser):
    """Parses Telegram's HTML subset strictly; ``errors`` says what Telegram would refuse, ``text`` what it shows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.errors.append(f"unsupported start tag \"{tag}\"")
        if tag == "a" and not any(name == "href" and value for name, value in attrs):
            self.errors.append("a tag without href")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"self-closing tag \"{tag}\"")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"can't find end tag corresponding to start tag \"{tag}\"")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if re.search(r"[<>&]", data):
            self.errors.append(f"unescaped character in {data[:40]!r}")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED_ENTITIES:
            self.errors.append(f"unsupported entity &{name};")
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def close(self) -> None:
        super().close()
        if self.rawdata:
            self.errors.append(f"unparsed rest {self.rawdata[:40]!r}")
        if self.stack:
            self.errors.append(f"unclosed tags {self.stack}")


def parse_html(text: str) -> tuple[str, list[str]]:
    """(the text a user sees, problems Telegram would refuse the message for)."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    return "".join(parser.text), parser.errors


@dataclass
class Call:
    """One Bot API request as received, with the HTTP status it got."""

    method: str
    params: dict[str, Any]
    status: int = 200
    result: Any = None
    """What the server answered (the sent Message for sendMessage)."""


@dataclass
class Fault:
    """An armed error: the next ``times`` matching calls fail (None = every one), or answer only after ``delay``."""

    method: str
    status: int | None
    """None: answer as usual, only ``delay`` seconds late (Telegram did the work, the bot gave up waiting)."""
    description: str
    chat_id: int | None = None
    retry_after: int | None = None
    times: int | None = 1
    delay: float = 0.0


@dataclass
class FakeTelegram:
    """The Bot API on 127.0.0.1; point the bot at ``base_url`` with ``token``."""

    token: str = TOKEN
    bot: dict[str, Any] = field(default_factory=lambda: dict(BOT_USER))
    calls: list[Call] = field(default_factory=list)
    webhook: dict[str, Any] = field(default_factory=dict)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    """Messages the bot sent, by (chat id, message id), with their current keyboard."""

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._updates: list[dict[str, Any]] = []
        self._held = False
        self._faults: list[Fault] = []
        self._chats: dict[int, dict[str, Any]] = {}
        self._next_update = 1
        self._next_message = 1000
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What TELEGRAM_API_BASE_URL should say."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeTelegram":
        """Serve in a background thread until ``stop``."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
            app.router.add_route("*", "/bot{token}/{method}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)  # its log lines would carry the token
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp has no public accessor
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake Telegram did not start"
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    # -- what the test does -----------------------------------------------------------------------------------

    def fail(self, method: str, status: int, description: str, *, chat_id: int | None = None,
             retry_after: int | None = None, times: int | None = 1) -> None:
        """Make the next matching call(s) of ``method`` fail as Telegram would."""
        with self._cond:
            self._faults.append(Fault(method, status, description, chat_id, retry_after, times))

    def stall(self, method: str, seconds: float, *, chat_id: int | None = None, times: int | None = 1) -> None:
        """Make the next matching call(s) of ``method`` answer only after ``seconds`` (longer than the bot waits)."""
        with self._cond:
            self._faults.append(Fault(method, None, "", chat_id, None, times, delay=seconds))

    @contextlib.contextmanager
    def one_batch(self) -> Iterator[None]:
        """Updates pushed inside the block reach the bot together, in one getUpdates answer."""
        with self._cond:
            self._held = True
        try:
            yield
        finally:
            with self._cond:
                self._held = False

    def push_message(self, text: str, *, sender: dict[str, Any], chat: dict[str, Any] | None = None,
                     reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """Someone writes ``text``; returns the update. Entities are set like Telegram does (commands, mentions)."""
        chat = chat or private_chat(sender)
        with self._cond:
            self._chats[chat["id"]] = chat
            message: dict[str, Any] = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat,
                                       "from": sender, "text": text}
        entities = []
        for match in re.finditer(r"(?<!\w)/\w+(@\w+)?|(?<!\w)@\w+", text):
            kind = "bot_command" if match.group().startswith("/") else "mention"
            if kind == "bot_command" and match.start() != 0:
                continue
            entities.append({"type": kind, "offset": utf16_len(text[:match.start()]),
                             "length": utf16_len(match.group())})
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self._push({"message": message})

    def push_photo(self, *, sender: dict[str, Any]) -> dict[str, Any]:
        """Someone sends a photo without a caption."""
        chat = private_chat(sender)
        with self._cond:
            self._chats[chat["id"]] = chat
            message = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat, "from": sender,
                       "photo": [{"file_id": "ph1", "file_unique_id": "u1", "width": 90, "height": 90}]}
        return self._push({"message": message})

    def push_callback(self, message: dict[str, Any], data: str, *, sender: dict[str, Any]) -> dict[str, Any]:
        """Someone presses a button with ``data`` under the bot's ``message``."""
        with self._cond:
            query_id = f"cq{self._next_update}"
        return self._push({"callback_query": {"id": query_id, "from": sender, "chat_instance": "ci-1",
                                              "message": message, "data": data}})

    def make_update(self, text: str, *, sender: dict[str, Any]) -> dict[str, Any]:
        """An update as Telegram would POST it to a webhook (not queued for getUpdates)."""
        chat = private_chat(sender)
        with self._cond:
            self._chats[chat["id"]] = chat
            update_id = self._next_update
            self._next_update += 1
            message_id = self._new_message_id()
        return {"update_id": update_id, "message": {"message_id": message_id, "date": int(time.time()), "chat": chat,
                                                    "from": sender, "text": text}}

    def calls_of(self, method: str, *, chat_id: int | None = None, ok_only: bool = True) -> list[Call]:
        """Recorded calls of one method (to one chat), oldest first."""
        with self._cond:
            return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)
                    and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def sent_texts(self, chat_id: int) -> list[str]:
        """The HTML of every message delivered to a chat."""
        return [c.params["text"] for c in self.calls_of("sendMessage", chat_id=chat_id)]

    def wait_for(self, method: str, *, count: int = 1, chat_id: int | None = None, timeout: float = 20) -> list[Call]:
        """Block until ``count`` successful calls of ``method`` arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := self.calls_of(method, chat_id=chat_id)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"no {count}x {method} within {timeout} s; calls: {[c.method for c in self.calls]}"
                self._cond.wait(left)
            return found

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message the bot sent, as it is now (keyboard included)."""
        with self._cond:
            return json.loads(json.dumps(self.messages[(chat_id, message_id)]))

    # -- the Bot API ------------------------------------------------------------------------------------------

    def _new_message_id(self) -> int:
        self._next_message += 1
        return self._next_message

    def _push(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            update = {"update_id": self._next_update, **body}
            self._next_update += 1
            self._updates.append(update)
            self._cond.notify_all()
        return update

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        params = await _params(request)
        if method.lower() == "getupdates":
            return await self._get_updates(params)
        with self._cond:
            fault = next((f for f in self._faults if f.method.lower() == method.lower()
                          and (f.chat_id is None or f.chat_id == params.get("chat_id"))), None)
            if fault is not None:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                if fault.status is not None:
                    self.calls.append(Call(method, params, fault.status))
                    self._cond.notify_all()
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            extra = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
            return _error(fault.status, fault.description, extra)
        handler = getattr(self, f"_api_{method.lower()}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        status, result = handler(params)
        with self._cond:
            self.calls.append(Call(method, params, status, result if status == 200 else None))
            self._cond.notify_all()
        if status != 200:
            return _error(status, result)
        return web.json_response({"ok": True, "result": result})

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 1.0)  # long poll, kept short so stopping is quick
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]  # offset confirms
                ready = [] if self._held else list(self._updates[:100])
            if ready or time.monotonic() >= deadline:
                return web.json_response({"ok": True, "result": ready})
            await asyncio.sleep(0.01)

    def _api_getme(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.bot

    def _api_deletewebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        self.webhook = {}
        return 200, True

    def _api_setwebhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        self.webhook = dict(params)
        return 200, True

    def _api_getwebhookinfo(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}

    def _api_setmycommands(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _api_sendchataction(self, params: dict[str, Any]) -> tuple[int, Any]:
        return 200, True

    def _api_answercallbackquery(self, params: dict[str, Any]) -> tuple[int, Any]:
        if len(params.get("text") or "") > 200:
            return 400, "Bad Request: MESSAGE_TOO_LONG"
        return 200, True

    def _api_sendmessage(self, params: dict[str, Any]) -> tuple[int, Any]:
        text = params.get("text") or ""
        if params.get("parse_mode") == "HTML":
            shown, errors = parse_html(text)
            if errors:
                return 400, f"Bad Request: can't parse entities: {errors[0]}"
        else:
            shown = text
        if not shown.strip():
            return 400, "Bad Request: message text is empty"
        if utf16_len(shown) > MAX_TEXT:
            return 400, "Bad Request: message is too long"
        problem = _check_markup(params.get("reply_markup"))
        if problem:
            return 400, problem
        chat_id = params["chat_id"]
        with self._cond:
            chat = self._chats.get(chat_id, {"id": chat_id, "type": "private", "first_name": "?"})
            message = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat,
                       "from": self.bot, "text": shown}
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            self.messages[(chat_id, message["message_id"])] = message
        return 200, message

    def _api_senddocument(self, params: dict[str, Any]) -> tuple[int, Any]:
        document = params.get("document")
        if not isinstance(document, dict) or not document.get("data"):
            return 400, "Bad Request: there is no document in the request"
        if len(document["data"]) > MAX_UPLOAD_BYTES:
            return 413, "Request Entity Too Large"
        caption = params.get("caption") or ""
        if params.get("parse_mode") == "HTML":
            caption, errors = parse_html(caption)
            if errors:
                return 400, f"Bad Request: can't parse entities: {errors[0]}"
        if utf16_len(caption) > MAX_CAPTION:
            return 400, "Bad Request: message caption is too long"
        chat_id = params["chat_id"]
        with self._cond:
            chat = self._chats.get(chat_id, {"id": chat_id, "type": "private", "first_name": "?"})
            message = {"message_id": self._new_message_id(), "date": int(time.time()), "chat": chat,
                       "from": self.bot, "caption": caption,
                       "document": {"file_name": document["filename"], "file_size": len(document["data"]),
                                    "file_id": f"doc{self._next_message}", "file_unique_id": f"u{self._next_message}"}}
            self.messages[(chat_id, message["message_id"])] = message
        return 200, message

    def documents(self, chat_id: int) -> list[dict[str, Any]]:
        """Documents the bot sent to a chat: file name, bytes and caption, in order."""
        return [{"filename": c.params["document"]["filename"], "data": c.params["document"]["data"],
                 "caption": c.params.get("caption")} for c in self.calls_of("sendDocument", chat_id=chat_id)]

    def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> tuple[int, Any]:
        key = (params.get("chat_id"), params.get("message_id"))
        with self._cond:
            message = self.messages.get(key)
            if message is None:
                return 400, "Bad Request: message to edit not found"
            markup = params.get("reply_markup")
            if markup == message.get("reply_markup") or (not markup and "reply_markup" not in message):
                return 400, "Bad Request: message is not modified"
            problem = _check_markup(markup)
            if problem:
                return 400, problem
            if markup and markup.get("inline_keyboard"):
                message["reply_markup"] = markup
            else:
                message.pop("reply_markup", None)
            return 200, message


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body or {})
    form = await request.post()
    out: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):  # an uploaded file (multipart/form-data)
            out[key] = {"filename": value.filename, "content_type": value.content_type, "data": value.file.read()}
            continue
        if key in _TEXT_PARAMS:
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _check_markup(markup: Any) -> str | None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)
