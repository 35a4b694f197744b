"""The Telegram channel: python-telegram-bot 22 around the helpdesk core, by long polling or by webhook.

The only module that imports python-telegram-bot; its settings are in ``telegram_settings.py``, the HTML and the
button payloads it sends in ``telegram_render.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import hmac
import json
import logging
import re
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aiohttp import web
from telegram import (Bot, BotCommand, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions,
                      Message, MessageEntity, ReplyParameters, Update)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes,
                          MessageHandler, TypeHandler, filters)

from bot.channels.telegram_access import LEGACY_FILE, TelegramAccess
from bot.channels.telegram_render import (ButtonPress, is_expert_button, keyboard_rows, parse_callback_data,
                                          render_file_caption, render_file_gone, render_plain, render_reply,
                                          render_text)
from bot.channels.telegram_settings import WEBHOOK_PATH, TelegramSettings
from bot.core import HelpdeskService
from bot.messages import ActionKind, Decision, FileOffer, Incoming, Press, Reply, StoredFile
from bot.runtime import Core, InOrder, Limiter, SlidingWindowLimiter, conversation_key, database_away
from bot.texts import (BUTTON_GONE, DATABASE_AWAY, ERROR_TEXT, EXPERT_ATTACHMENT, EXPERT_BUTTON_ACK, INVITE_INVALID,
                       NOT_YOUR_WALK, RATE_LIMITED, REFUSAL, REFUSAL_BUTTON, TELEGRAM_COMMANDS, TELEGRAM_WELCOME,
                       TEXT_ONLY, WELCOME_INVITED, expert_answer_text)
from escalation.delivery import DeliveryError, ExpertAnswer
from common.database import database_url
from common.errors import ConfigError

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_RETRY_WAIT_SECONDS = 5.0
"""A 429 is retried once after at most this long; a handler that sleeps longer holds up its user for nothing."""
REQUEST_TIMEOUTS = {"connect": 5.0, "write": 5.0, "read": 5.0, "pool": 1.0}
"""Seconds per phase of one Bot API call (python-telegram-bot's defaults, set explicitly so deliver() can add up)."""
FILE_WRITE_TIMEOUT_SECONDS = 30.0
"""Uploading a document (up to 10 MB) gets longer than a text message to write."""
DELIVER_MARGIN_SECONDS = 30.0
TYPING_EVERY_SECONDS = 4.5
"""Telegram shows "typing" for five seconds per chat action."""
CONCURRENT_UPDATES = 8
ALLOWED_UPDATES = ["message", "callback_query"]

T = TypeVar("T")


# -- the channel ------------------------------------------------------------------------------------------------

class TelegramStartError(ConfigError):
    """Telegram could not be reached, or refused to start the bot; the message never carries the token.

    A ConfigError, so `vraagbaak serve` stops with this message instead of a traceback.
    """


def send_worst_case_seconds() -> float:
    """The longest one message can take in ``_send_parts``: a call, the capped 429 wait and a second call, and all
    of that twice when the group moved to a supergroup."""
    one_call = sum(REQUEST_TIMEOUTS.values())
    return 2 * (2 * one_call + MAX_RETRY_WAIT_SECONDS)


LEASE_CHECK_SECONDS = 20.0
"""How often a worker in polling mode renews (or tries to take) the polling lease; the lease lasts three times that."""


class Lease(Protocol):
    """One holder at a time across workers (``bot.shared_state.SharedLease``)."""

    def hold(self) -> bool:
        """Take or renew; True while held."""
        ...

    def release(self) -> None:
        """Give it up."""
        ...


class UpdateInbox(Protocol):
    """Webhook updates shared by the workers, handled per chat in order (``bot.shared_state.SharedUpdateInbox``)."""

    def add(self, update_id: int, chat: str, body: str) -> bool:
        """Store; False when already there."""
        ...

    def claim(self, chat: str) -> bool:
        """Take or renew the chat; True while held."""
        ...

    def release(self, chat: str) -> None:
        """Give the chat up."""
        ...

    def next(self, chat: str) -> tuple[int, str] | None:
        """The chat's oldest waiting update."""
        ...

    def done(self, update_id: int) -> None:
        """Handled."""
        ...

    def waiting_chats(self, *, older_than: float, limit: int = 100) -> list[str]:
        """Chats whose updates wait longer than ``older_than`` seconds."""
        ...


SWEEP_SECONDS = 5.0
"""How often a worker looks for updates left waiting by a worker that died (their chat's claim ran out)."""
CLAIM_RENEW_SECONDS = 8.0
"""How often a chat's claim (30 s) is renewed while one of its updates is being handled."""
DONE_RETRY_SECONDS = 25.0
"""How long a handled update is recorded again and again while the database is away (less than a chat's claim,
30 s: no other worker takes the chat meanwhile)."""
DONE_RETRY_PAUSE_SECONDS = 1.0
STOP_WAIT_SECONDS = 20.0
"""At a stop, how long the chats being handled may take to finish the update in hand."""


def deliver_timeout(parts: int, files: int = 0) -> float:
    """How long deliver() waits for ``parts`` messages and ``files`` documents: well past the worst case.

    Giving up earlier would cancel a send that may still reach the chat, and the retry would show it twice.
    """
    per_file = send_worst_case_seconds() + 4 * (FILE_WRITE_TIMEOUT_SECONDS - REQUEST_TIMEOUTS["write"])
    return max(parts, 1) * send_worst_case_seconds() + files * per_file + DELIVER_MARGIN_SECONDS


class TelegramChannel:
    """Officers chat with the helpdesk in Telegram; expert answers are pushed back into the same chat."""

    name = CHANNEL

    def __init__(self, *, helpdesk: HelpdeskService | Callable[[], HelpdeskService] | Core, settings: TelegramSettings,
                 access: TelegramAccess, clock: Callable[[], float] = time.monotonic,
                 limiter: Limiter | None = None, poll_lease: Lease | None = None,
                 lease_check_seconds: float = LEASE_CHECK_SECONDS, inbox: UpdateInbox | None = None,
                 sweep_seconds: float = SWEEP_SECONDS) -> None:
        # URLs carry the token: httpx logs them at INFO and PTB at DEBUG.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if logging.getLogger("telegram").getEffectiveLevel() < logging.INFO:
            logging.getLogger("telegram").setLevel(logging.INFO)
        self.core = helpdesk if isinstance(helpdesk, Core) else Core(helpdesk)
        self.settings = settings
        self.access = access
        self.limiter = limiter or SlidingWindowLimiter(settings.rate_per_minute, 60, clock=clock)
        """Messages per officer per minute; shared by the workers when given (``bot/shared_state.py``)."""
        self.poll_lease = poll_lease
        """With several workers in polling mode: only the holder long-polls (Telegram allows one consumer)."""
        self._lease_check = lease_check_seconds
        self._lease_task: asyncio.Task | None = None
        self.inbox = inbox
        """With several workers in webhook mode: updates go through the database, each chat handled in order."""
        self._sweep_seconds = sweep_seconds
        self._sweep_task: asyncio.Task | None = None
        self._draining: dict[str, asyncio.Task] = {}
        self.handled_updates = 0
        """Updates fully processed since start (for diagnostics, and tests that wait for a quiet moment)."""
        self.application = self._build_application()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self._closed = False
        # A chat's updates are handled in the order they arrived (a question, then /expert about it), different
        # chats at the same time; PTB starts the handlers of a batch concurrently but in order.
        self._in_order = InOrder()

    @property
    def helpdesk(self) -> HelpdeskService:
        """The helpdesk core, built on first use (delivering an expert answer does not need the index)."""
        return self.core.helpdesk

    @classmethod
    def from_env(cls, *, helpdesk: HelpdeskService | Callable[[], HelpdeskService] | Core, home: Path,
                 env: Mapping[str, str], limiter: Callable[[int], Limiter] | None = None,
                 poll_lease: Lease | None = None, inbox: UpdateInbox | None = None) -> "TelegramChannel":
        """The channel as `vraagbaak serve` runs it: settings from the environment, invites under ``home``
        (``limiter``: builds the message limiter for a rate per minute, e.g. one the workers share)."""
        settings = TelegramSettings.from_env(env)
        home.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        access = TelegramAccess(database_url(home, env), allowed=settings.allowed_users, legacy=home / LEGACY_FILE)
        return cls(helpdesk=helpdesk, settings=settings, access=access,
                   limiter=limiter(settings.rate_per_minute) if limiter is not None else None,
                   poll_lease=poll_lease if settings.mode == "polling" else None,
                   inbox=inbox if settings.mode == "webhook" else None)

    def _builder(self) -> ApplicationBuilder:
        builder = (ApplicationBuilder().token(self.settings.token).concurrent_updates(CONCURRENT_UPDATES)
                   .connect_timeout(REQUEST_TIMEOUTS["connect"]).write_timeout(REQUEST_TIMEOUTS["write"])
                   .read_timeout(REQUEST_TIMEOUTS["read"]).pool_timeout(REQUEST_TIMEOUTS["pool"]))
        urls = self.settings.bot_urls()
        if urls is not None:
            builder = builder.base_url(urls[0]).base_file_url(urls[1])
        return builder

    def _build_application(self) -> Application:
        builder = self._builder()
        if self.settings.mode == "webhook":
            builder = builder.updater(None)  # updates arrive on our own aiohttp route
        application = builder.build()
        application.add_handler(CommandHandler("start", self._on_start, filters=filters.UpdateType.MESSAGE))
        application.add_handler(CallbackQueryHandler(self._on_button))
        application.add_handler(MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE, self._on_text))
        application.add_handler(MessageHandler(filters.ATTACHMENT & filters.ChatType.PRIVATE
                                               & filters.UpdateType.MESSAGE, self._on_attachment))
        application.add_handler(TypeHandler(Update, self._count), group=1)
        application.add_error_handler(self._on_error)
        return application

    # -- Channel protocol ---------------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The webhook endpoint in webhook mode; nothing in polling mode."""
        if self.settings.mode != "webhook":
            return []
        return [web.post(WEBHOOK_PATH, self._webhook)]

    async def start(self) -> None:
        """Connect (getMe), start handling, then long-poll or register the webhook; a failure undoes all of it.

        Raises ConfigError when Telegram rejects the token and TelegramStartError when Telegram cannot be reached,
        refuses a call or answers something python-telegram-bot cannot read; neither message, nor any exception
        chained to it, carries the token.
        """
        if self._closed:
            raise RuntimeError("this Telegram channel was closed; make a new one")
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        try:
            await self._start()
        except BaseException as exc:
            await self._undo_start()
            error = self._start_error(exc)
            if error is None:
                raise
        else:
            return
        raise error  # raised here, outside the except block, so PTB's exception (with the token) is not chained

    async def _start(self) -> None:
        app = self.application
        await app.initialize()
        await app.start()
        self._running = True
        if self.settings.mode == "webhook":
            # With the shared inbox Telegram sends one update at a time (each acknowledged once stored), so the
            # update ids of a chat reach the database in order whichever worker takes them.
            await app.bot.set_webhook(url=self.settings.webhook_url, secret_token=self.settings.webhook_secret,
                                      allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False,
                                      **({"max_connections": 1} if self.inbox is not None else {}))
            if self.inbox is not None:
                self._sweep_task = asyncio.create_task(self._sweep())
        elif self.poll_lease is None:
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
        else:
            await self._poll_if_leading()  # the first check now, so a lone worker polls from the start
            self._lease_task = asyncio.create_task(self._keep_polling_lease())
        try:
            await app.bot.set_my_commands([BotCommand(c, d) for c, d in TELEGRAM_COMMANDS])
        except TelegramError as exc:  # the menu is a convenience; the bot works without it
            logger.warning("Telegram command menu not set: %s", self._redact(str(exc)))
        logger.info("Telegram channel started as @%s (%s)", app.bot.username, self.settings.mode)

    def _start_error(self, exc: BaseException) -> Exception | None:
        """What start() raises instead of ``exc``; None to let ``exc`` through (it does not carry the token)."""
        if isinstance(exc, InvalidToken):  # PTB puts the token itself in this message
            return ConfigError("TELEGRAM_BOT_TOKEN was rejected by Telegram (revoked or mistyped?)")
        where = self.settings.api_base_url or "api.telegram.org"
        if isinstance(exc, TelegramError):
            return TelegramStartError(f"the Telegram channel could not start: {type(exc).__name__} from {where}: "
                                      f"{self._redact(exc.message)}")
        if isinstance(exc, (TypeError, ValueError, KeyError, AttributeError)):
            # PTB reads each answer into its own types: a getMe without is_bot, or a result that is not an
            # object, fails there (a Bot API stand-in or proxy that is not quite the Bot API). The traceback says
            # which call it was (`vraagbaak -v serve`).
            logger.info("Telegram start-up answer not understood:\n%s",
                        self._redact("".join(traceback.format_exception(exc))))
            return TelegramStartError(f"the Telegram channel could not start: unexpected answer from {where} "
                                      f"({type(exc).__name__}: {self._redact(str(exc))})")
        if isinstance(exc, Exception) and self.settings.token in str(exc):
            return TelegramStartError(f"the Telegram channel could not start: {type(exc).__name__}: "
                                      f"{self._redact(str(exc))}")
        return None

    def _redact(self, text: str) -> str:
        return text.replace(self.settings.token, "<TELEGRAM_BOT_TOKEN>")

    async def _poll_if_leading(self) -> None:
        """Take or renew the polling lease; poll while it is held, stop polling when another worker has it."""
        updater = self.application.updater
        assert updater is not None and self.poll_lease is not None
        try:
            leading = await asyncio.to_thread(self.poll_lease.hold)
        except Exception:  # noqa: BLE001 - the database is down: keep doing what this worker did
            logger.exception("Telegram polling lease not checked")
            return
        if leading and not updater.running:
            logger.info("Telegram: this worker long-polls now (it holds the polling lease)")
            await updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
        elif not leading and updater.running:
            logger.warning("Telegram: another worker holds the polling lease; this one stops polling")
            await updater.stop()

    async def _keep_polling_lease(self) -> None:
        while True:
            await asyncio.sleep(self._lease_check)
            try:
                await self._poll_if_leading()
            except Exception:  # noqa: BLE001 - one failed start of polling is retried at the next check
                logger.exception("Telegram polling not (re)started")

    async def _undo_start(self) -> None:
        """Stop whatever start() got running, so nothing keeps polling or holds connections after a failure."""
        self._running = False
        app = self.application
        try:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
            # After a failed getMe the Application counts as not initialized, but its bot's connections are open.
            await app.bot.shutdown()
        except Exception as exc:  # noqa: BLE001 - the start error matters more; this one only gets logged
            logger.warning("Telegram channel not fully cleaned up after a failed start: %s",
                           self._redact(f"{type(exc).__name__}: {exc}"))

    async def stop(self) -> None:
        """Stop polling, finish the updates in hand, close connections and the access database; safe to call twice.

        The webhook stays registered so Telegram keeps updates until the service is back.
        """
        running, self._running = self._running, False
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
            self._lease_task = None
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            await asyncio.gather(self._sweep_task, return_exceptions=True)
            self._sweep_task = None
        if self._draining:
            # Each chat finishes the update in hand and starts no other: the rest waits for another worker.
            await asyncio.wait(list(self._draining.values()), timeout=STOP_WAIT_SECONDS)
        if running:
            app = self.application
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if self.poll_lease is not None:
                await asyncio.to_thread(self.poll_lease.release)  # another worker polls from its next check
            if app.running:
                await app.stop()
            await app.shutdown()
        self.close()

    def close(self) -> None:
        """Release what the channel holds without a running bot (the access database); safe to call twice.

        For a channel that was only used to deliver() (e.g. `vraagbaak tickets poll`); stop() calls it too.
        """
        if self._running:
            raise RuntimeError("stop() the Telegram channel instead: it is running")
        if not self._closed:
            self._closed = True
            self.access.close()

    async def deliver(self, reply_address: dict[str, Any], answer: ExpertAnswer,
                      files: Sequence[StoredFile] = ()) -> None:
        """Push an expert answer, then its attachments as documents, into the stored chat; on the bot's event loop
        while it runs, or with a bot of its own for a one-off command (`vraagbaak tickets poll`, `serve --once`).

        An answer that fits in one Telegram message goes out as one, so a retry after a failure cannot repeat half
        of it. A longer one goes out in parts; if a later part or a document fails, the retry sends the earlier
        ones again.
        """
        chat_id = reply_address.get("chat_id") if isinstance(reply_address, dict) else None
        if not isinstance(chat_id, int):
            raise DeliveryError("no Telegram chat id in the reply address", permanent=True)
        reply_to = reply_address.get("reply_to_message_id")
        reply_to = reply_to if isinstance(reply_to, int) else None
        parts = render_text(expert_answer_text(answer))
        offers = [FileOffer.of(f, note=EXPERT_ATTACHMENT) for f in files]
        if not self._running:
            await self._deliver_standalone(chat_id, parts, reply_to, offers)
            return
        if asyncio.get_running_loop() is not self._loop:
            # The bot's HTTP connections belong to its loop; a second loop would use them unsafely.
            raise DeliveryError("deliver() must run on the event loop the Telegram channel serves on")
        try:
            await asyncio.wait_for(self._deliver_parts(self.application.bot, chat_id, parts, reply_to, offers),
                                   deliver_timeout(len(parts), len(offers)))
        except asyncio.TimeoutError:
            raise DeliveryError("Telegram did not answer in time") from None

    async def _deliver_standalone(self, chat_id: int, parts: list[str], reply_to: int | None,
                                  files: list[FileOffer]) -> None:
        urls = self.settings.bot_urls()
        bot = Bot(self.settings.token, **({"base_url": urls[0], "base_file_url": urls[1]} if urls else {}))
        try:
            try:
                await bot.initialize()
            except InvalidToken:  # its message carries the token
                raise DeliveryError("TELEGRAM_BOT_TOKEN was rejected by Telegram (revoked or mistyped?)") from None
            except TelegramError as exc:
                raise DeliveryError(f"Telegram not reachable: {type(exc).__name__}") from None
            await self._deliver_parts(bot, chat_id, parts, reply_to, files)
        finally:
            await bot.shutdown()  # also after a failed getMe: its connections are open

    async def _deliver_parts(self, bot: Any, chat_id: int, parts: list[str], reply_to: int | None,
                             files: Sequence[FileOffer] = ()) -> None:
        try:
            chat_id = await self._send_parts(bot, chat_id, parts, reply_to=reply_to)
            await self._send_files(bot, chat_id, files)
        except Forbidden as exc:
            raise DeliveryError(f"the officer blocked the bot or left the chat ({exc.message})", permanent=True) \
                from None
        except BadRequest as exc:  # chat not found, or a message Telegram refuses: sending again will not help
            raise DeliveryError(f"Telegram refused the message ({exc.message})", permanent=True) from None
        except TelegramError as exc:
            raise DeliveryError(f"Telegram error: {type(exc).__name__}: {exc.message}") from None

    # -- sending ------------------------------------------------------------------------------------------------

    async def _send_parts(self, bot: Any, chat_id: int, parts: list[str], *,
                          keyboard: InlineKeyboardMarkup | None = None, reply_to: int | None = None) -> int:
        """Send HTML parts in order; the keyboard goes under the last one; a migrated group is followed once. The
        chat id the parts went to (the supergroup's, after a migration)."""
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and i == 0 else None

            def send(target: int = chat_id) -> Awaitable[Message]:
                return bot.send_message(target, part, parse_mode=ParseMode.HTML, reply_parameters=reply,
                                        reply_markup=keyboard if last else None,
                                        link_preview_options=LinkPreviewOptions(is_disabled=True))
            try:
                await _with_retry(send)
            except ChatMigrated as exc:
                logger.info("Telegram group moved to a supergroup; sending there")
                chat_id = exc.new_chat_id
                await _with_retry(lambda: send(chat_id))
        return chat_id

    async def _send_files(self, bot: Any, chat_id: int, files: Sequence[FileOffer]) -> None:
        """Each file as a document, its note as the caption; a file gone from disk is said in a message instead."""
        for offer in files:
            try:
                data = await asyncio.to_thread(offer.path.read_bytes)
            except OSError:
                logger.warning("file %s for a Telegram chat is gone from disk", offer.ref)
                await _with_retry(lambda: bot.send_message(chat_id, render_file_gone(offer), parse_mode=ParseMode.HTML))
                continue
            caption = render_file_caption(offer)
            await _with_retry(lambda: bot.send_document(
                chat_id, document=data, filename=offer.name, caption=caption, parse_mode=ParseMode.HTML,
                write_timeout=FILE_WRITE_TIMEOUT_SECONDS))

    async def _send_reply(self, chat_id: int, reply: Reply, *, reply_to: int | None = None,
                          owner: int | None = None) -> None:
        bot = self.application.bot
        chat_id = await self._send_parts(bot, chat_id, render_reply(reply), keyboard=keyboard_for(reply, owner=owner),
                                         reply_to=reply_to)
        await self._send_files(bot, chat_id, reply.files)

    async def _say(self, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        await self._send_parts(self.application.bot, chat_id, render_plain(text), reply_to=reply_to)

    @contextlib.asynccontextmanager
    async def _typing(self, chat_id: int) -> AsyncIterator[None]:
        """Show "typing ..." until the block ends (the first one before any work starts)."""
        await self._chat_action(chat_id)

        async def keep() -> None:
            while True:
                await asyncio.sleep(TYPING_EVERY_SECONDS)
                await self._chat_action(chat_id)

        task = asyncio.create_task(keep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _chat_action(self, chat_id: int) -> None:
        try:
            await self.application.bot.send_chat_action(chat_id, ChatAction.TYPING)
        except TelegramError as exc:  # cosmetic: the answer matters, not the indicator
            logger.debug("typing indicator not shown: %s", exc)

    # -- handlers -----------------------------------------------------------------------------------------------

    async def _allowed(self, user_id: int) -> bool:
        """Whether the officer may use the bot; the access list is in the database, asked off the event loop."""
        return await asyncio.to_thread(self.access.is_allowed, user_id)

    async def _on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start, optionally with an invite code from a deep link."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        async with self._in_order(_conversation(message.chat.id, message.chat.type, user.id)):
            if not await self._within_rate(message, user.id):
                return
            invited = False
            if context.args and not await self._allowed(user.id):
                if not await asyncio.to_thread(self.access.redeem, context.args[0], user.id):
                    await self._say(message.chat_id, INVITE_INVALID)
                    return
                invited = True
                logger.info("Telegram user admitted with an invite code")
            if not await self._allowed(user.id):
                await self._refuse(message, user.id)
                return
            text = (WELCOME_INVITED if invited else "") + TELEGRAM_WELCOME.format(mention=f"@{context.bot.username}")
            await self._say(message.chat_id, text)

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A question, or a command for the core (/help, /expert, /status, /reset, /opgelost, /vervolg)."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None or user.is_bot:
            return
        text = self._addressed(message)
        if text is None:
            return
        async with self._in_order(_conversation(message.chat.id, message.chat.type, user.id)):
            if not await self._within_rate(message, user.id):
                return
            if not await self._allowed(user.id):
                await self._refuse(message, user.id)
                return
            if not text.strip():
                text = "/help"  # "@vraagbaak_bot" alone in a group
            incoming = _incoming(message, user, text)
            group = _is_group(message)
            async with self._typing(message.chat_id):
                reply = await self.core.call(lambda helpdesk: helpdesk.handle(incoming))
            await self._send_reply(message.chat_id, reply, reply_to=message.message_id if group else None,
                                   owner=user.id if group else None)

    async def _on_attachment(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Photos, files, voice notes: say that only text is read."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        async with self._in_order(_conversation(message.chat.id, message.chat.type, user.id)):
            if await self._within_rate(message, user.id) and await self._allowed(user.id):
                await self._say(message.chat_id, TEXT_ONLY)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """👍, 👎 or "Vraag een expert" under an answer; everything needed is in the callback data and the log."""
        query = update.callback_query
        if query is None:
            return
        user = query.from_user
        message = query.message
        key = (f"telegram:user:{user.id}" if message is None
               else _conversation(message.chat.id, message.chat.type, user.id))
        async with self._in_order(key):
            allowed, tell = await asyncio.to_thread(self.limiter.allow, user.id)
            if not allowed:
                await _answer(query, RATE_LIMITED, alert=tell)
                return
            await self._button(query, user, message)

    async def _button(self, query: CallbackQuery, user: Any, message: Any) -> None:
        """A button press within the rate limit: vote, escalate the answer's question, or answer a guided walk."""
        press = parse_callback_data(query.data)
        if press is None or (press.kind is ActionKind.CHOICE and message is None):
            await _answer(query, BUTTON_GONE)
            return
        if not await self._allowed(user.id):
            await _answer(query, REFUSAL_BUTTON, alert=True)
            return
        if press.kind is ActionKind.CHOICE:
            await self._choose(query, user, message, press)
            return
        event = Press(press.kind, press.reply_id)
        if press.kind in (ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN):
            # A vote needs no chat: under a message too old to be sent along, it still counts.
            voter = (_incoming(message, user, "") if message is not None else
                     Incoming(channel=CHANNEL, conversation_id=f"{CHANNEL}:{user.id}", user_id=str(user.id), text=""))
            ack = await self.core.call(lambda helpdesk: helpdesk.press(voter, event))
            await _answer(query, ack.text)
            await self._drop_buttons(query, keep_expert=True)
            return
        if message is None:
            await _answer(query, BUTTON_GONE)
            return
        await _answer(query, EXPERT_BUTTON_ACK)
        chat = message.chat
        incoming = _incoming(message, user, "/expert")
        async with self._typing(chat.id):
            reply = await self.core.call(lambda helpdesk: helpdesk.press(incoming, event))
        await self._send_reply(chat.id, reply, reply_to=message.message_id)  # the ticket number first, then tidy up
        if reply.decision is Decision.ESCALATE:  # not for a colleague's press, a limit or a question asked for
            await self._drop_buttons(query, keep_expert=False)

    async def _choose(self, query: CallbackQuery, user: Any, message: Any, press: ButtonPress) -> None:
        """A choice in a guided walk: the next step, as if its command was typed; only the walker may choose."""
        if press.owner is not None and press.owner != user.id:
            await _answer(query, NOT_YOUR_WALK, alert=True)  # the buttons stay for their officer
            return
        await _answer(query, None)
        await self._drop_buttons(query, keep_expert=False)
        incoming = _incoming(message, user, press.command or "")
        async with self._typing(message.chat.id):
            reply = await self.core.call(lambda helpdesk: helpdesk.press(incoming, Press(press.kind,
                                                                                         command=press.command)))
        group = _is_group(message)
        await self._send_reply(message.chat.id, reply, owner=user.id if group else None)

    async def _drop_buttons(self, query: Any, *, keep_expert: bool) -> None:
        """Take used buttons away (the message itself remembers, so this survives a restart).

        Cosmetic: it never raises, so a timeout here cannot cost the officer the reply to their press.
        """
        message = query.message
        markup = getattr(message, "reply_markup", None)
        if not isinstance(message, Message) or markup is None:
            return
        rows = [[b for b in row if keep_expert and is_expert_button(b.callback_data)]
                for row in markup.inline_keyboard]
        rows = [row for row in rows if row]
        if rows == [list(row) for row in markup.inline_keyboard]:
            return
        try:
            await _with_retry(lambda: message.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None))
        except BadRequest as exc:  # "message is not modified" after a double tap, or a message too old to edit
            logger.debug("buttons not updated: %s", exc)
        except TelegramError as exc:  # a timeout or network error: the buttons stay, the reply went out anyway
            logger.warning("used buttons not removed: %s", type(exc).__name__)

    async def _count(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        self.handled_updates += 1

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the error with its traceback, and tell the officer in Dutch; never a stack trace in the chat."""
        logger.error("Telegram update not handled", exc_info=context.error)
        if not isinstance(update, Update):
            return
        if update.callback_query is not None:
            await _answer(update.callback_query, None)
        chat = update.effective_chat
        if chat is None:
            return
        try:
            await self._say(chat.id, DATABASE_AWAY if database_away(context.error) else ERROR_TEXT)
        except TelegramError as exc:
            logger.warning("could not tell the officer about the error either: %s", exc)

    # -- webhook ------------------------------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.Response:
        """POST /telegram/webhook: only Telegram knows the secret token; updates join the same queue as polling."""
        given = request.headers.get(SECRET_HEADER)
        if given is None:
            return web.Response(status=401, text="secret token missing")
        expected = self.settings.webhook_secret or ""
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            logger.warning("Telegram webhook call with a wrong secret token refused")
            return web.Response(status=403, text="wrong secret token")
        if not self._running:
            return web.Response(status=503, text="not ready")
        try:
            data = await request.json()
            update = Update.de_json(data, self.application.bot)
        except Exception:  # noqa: BLE001 - whatever is malformed, Telegram gets a 400 and we keep running
            logger.warning("Telegram webhook body is not an update")
            return web.Response(status=400, text="not an update")
        if self.inbox is None:
            await self.application.update_queue.put(update)
            return web.Response(text="ok")
        chat = _update_chat(update)
        try:
            added = await asyncio.to_thread(self.inbox.add, update.update_id, chat, json.dumps(data))
        except Exception as exc:  # noqa: BLE001 - not stored: Telegram keeps the update and sends it again
            logger.warning("Telegram update %s not stored (%s); Telegram will send it again",
                           update.update_id, type(exc).__name__)
            return web.Response(status=503, text="try again")
        if not added:
            logger.info("Telegram update %s delivered again; handled once", update.update_id)
        self._drain_soon(chat)
        return web.Response(text="ok")

    def _drain_soon(self, chat: str) -> None:
        if chat not in self._draining and self._running:
            task = asyncio.create_task(self._drain(chat))
            self._draining[chat] = task
            task.add_done_callback(lambda _: self._draining.pop(chat, None))

    async def _drain(self, chat: str) -> None:
        """Handle the chat's waiting updates in order while this worker holds the chat (see SharedUpdateInbox)."""
        assert self.inbox is not None
        inbox = self.inbox
        try:
            while self._running:
                if not await asyncio.to_thread(inbox.claim, chat):
                    return  # another worker has the chat and will handle what waits
                try:
                    while self._running and (item := await asyncio.to_thread(inbox.next, chat)) is not None:
                        update_id, body = item
                        held = await self._handle_claimed(chat, update_id, body)
                        await self._mark_done(update_id)
                        if not held or not await asyncio.to_thread(inbox.claim, chat):
                            logger.warning("Telegram chat claim lost while update %s was handled", update_id)
                            return  # another worker has the chat now: it goes on from the next update
                finally:
                    await asyncio.to_thread(inbox.release, chat)
                # An update stored while the claim was being released would wait for the sweep: look once more.
                if await asyncio.to_thread(inbox.next, chat) is None:
                    return
        except Exception as exc:  # noqa: BLE001 - the database went away: the sweep comes back to this chat
            logger.warning("Telegram chat not drained (%s); retried by the sweep", type(exc).__name__)

    async def _handle_claimed(self, chat: str, update_id: int, body: str) -> bool:
        """Handle one update while renewing the chat's claim (a slow turn must not let another worker take the chat
        and handle the same update); False when the claim was lost meanwhile."""
        assert self.inbox is not None
        held = True

        async def renew() -> None:
            nonlocal held
            while held:
                await asyncio.sleep(CLAIM_RENEW_SECONDS)
                try:
                    held = await asyncio.to_thread(self.inbox.claim, chat)
                except Exception as exc:  # noqa: BLE001 - the database is away: try again at the next renewal
                    logger.warning("Telegram chat claim not renewed (%s)", type(exc).__name__)

        renewing = asyncio.create_task(renew())
        try:
            await self._handle_stored(update_id, body)
        finally:
            renewing.cancel()
        return held

    async def _mark_done(self, update_id: int) -> None:
        """Record a handled update, trying again while the database is away: left waiting, it would be handled (and
        answered) a second time by the sweep."""
        assert self.inbox is not None
        deadline = time.monotonic() + DONE_RETRY_SECONDS
        while True:
            try:
                await asyncio.to_thread(self.inbox.done, update_id)
                return
            except Exception as exc:  # noqa: BLE001 - the database is away: wait for it, within the chat's claim
                if time.monotonic() > deadline:
                    logger.warning("Telegram update %s handled but not recorded (%s): it may be answered again",
                                   update_id, type(exc).__name__)
                    raise
                await asyncio.sleep(DONE_RETRY_PAUSE_SECONDS)

    async def _handle_stored(self, update_id: int, body: str) -> None:
        try:
            update = Update.de_json(json.loads(body), self.application.bot)
        except Exception:  # noqa: BLE001 - stored by us from a body that parsed: never expected
            logger.exception("stored Telegram update %s unreadable; skipped", update_id)
            return
        await self.application.process_update(update)  # handler errors go to the error handler

    async def _sweep(self) -> None:
        """Now and then, drain the chats whose updates wait (their worker died, or the database was away)."""
        assert self.inbox is not None
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                chats = await asyncio.to_thread(self.inbox.waiting_chats, older_than=self._sweep_seconds)
            except Exception as exc:  # noqa: BLE001 - next time
                logger.warning("Telegram inbox not swept (%s)", type(exc).__name__)
                continue
            for chat in chats:
                self._drain_soon(chat)

    # -- helpers ------------------------------------------------------------------------------------------------

    def _addressed(self, message: Message) -> str | None:
        """The text meant for the helpdesk, or None when a group message is not for us.

        In a private chat every message counts. In a group only a mention of the bot, a reply to one of its
        messages, or a command (``/help`` or ``/help@our_bot``, not ``/help@other_bot``) does; the mention is
        removed from the question.
        """
        text = message.text or ""
        bot = self.application.bot
        username = bot.username or ""
        command = re.match(r"^(/\w+)@(\w+)\b", text)
        if command:
            if command.group(2).lower() != username.lower():
                return None  # a command for another bot in the same group
            text = command.group(1) + text[command.end():]
        mentioned = False
        if username and re.search(rf"@{re.escape(username)}\b", text, re.IGNORECASE):
            mentioned = True
            text = re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
        for entity, shown in message.parse_entities([MessageEntity.TEXT_MENTION]).items():
            if entity.user is not None and entity.user.id == bot.id:
                mentioned = True
                text = text.replace(shown, " ")
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            mentioned = True
        if _is_group(message) and not (mentioned or text.startswith("/")):
            return None
        return " ".join(text.split()) if mentioned else text.strip()

    async def _refuse(self, message: Message, user_id: int) -> None:
        logger.info("Telegram message from a user who is not allowed refused")
        await self._say(message.chat_id, REFUSAL.format(user_id=user_id),
                        reply_to=message.message_id if _is_group(message) else None)

    async def _within_rate(self, message: Message, user_id: int) -> bool:
        allowed, tell = await asyncio.to_thread(self.limiter.allow, user_id)
        if not allowed and tell:
            await self._say(message.chat_id, RATE_LIMITED, reply_to=message.message_id if _is_group(message) else None)
        return allowed


def keyboard_for(reply: Reply, *, owner: int | None = None) -> InlineKeyboardMarkup | None:
    """The buttons of ``keyboard_rows`` as Telegram's inline keyboard; None when the reply offers none."""
    rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in keyboard_rows(reply, owner=owner)]
    return InlineKeyboardMarkup(rows) if rows else None


def _incoming(message: Any, user: Any, text: str) -> Incoming:
    """``text`` from ``user`` in the chat of ``message`` as the core sees it: their own message, or a press of a
    button under ``message`` given as the text it stands for."""
    chat = message.chat
    return Incoming(channel=CHANNEL, conversation_id=_conversation(chat.id, chat.type, user.id), user_id=str(user.id),
                    text=text, user_name=user.full_name, reply_address=_address(chat.id, chat.type, message.message_id),
                    shared=_in_group(chat.type))


def _in_group(chat_type: str) -> bool:
    """A group chat, where colleagues read along (the handlers take messages only, never channel posts)."""
    return chat_type in (ChatType.GROUP, ChatType.SUPERGROUP)


def _is_group(message: Message) -> bool:
    return _in_group(message.chat.type)


def _conversation(chat_id: int, chat_type: str, user_id: int) -> str:
    return conversation_key(CHANNEL, chat_id, user_id, shared=_in_group(chat_type))


def _address(chat_id: int, chat_type: str, message_id: int) -> dict[str, Any]:
    """Where an expert answer goes: the chat, and in a group the question it answers."""
    if _in_group(chat_type):
        return {"chat_id": chat_id, "reply_to_message_id": message_id}
    return {"chat_id": chat_id}


async def _answer(query: CallbackQuery, text: str | None, *, alert: bool = False) -> None:
    """Stop the button's spinner; a query that is too old (after a restart) cannot be answered, which is fine."""
    try:
        await query.answer(text[:200] if text else None, show_alert=alert)
    except BadRequest as exc:
        logger.debug("callback query not answered: %s", exc)
    except TelegramError as exc:  # a timeout or network error: the press itself is still handled
        logger.warning("callback query not answered: %s", type(exc).__name__)


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form of retry_after
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def _with_retry(call: Callable[[], Awaitable[T]]) -> T:
    """One call to Telegram; on 429 wait what Telegram asks (capped) and try once more."""
    try:
        return await call()
    except RetryAfter as exc:
        wait = min(_retry_seconds(exc), MAX_RETRY_WAIT_SECONDS)
        logger.warning("Telegram flood control: retrying once in %.1f s", wait)
        await asyncio.sleep(wait)
        return await call()


def _update_chat(update: Update) -> str:
    """The chat whose order an update belongs to (a button press belongs to its message's chat)."""
    if update.effective_chat is not None:
        return str(update.effective_chat.id)
    if update.effective_user is not None:
        return f"user:{update.effective_user.id}"
    return "other"
