"""The Microsoft Teams channel: Bot Framework activities in, Adaptive Cards out, expert answers pushed back later.

The only module that imports botbuilder / botframework. Microsoft archived that SDK; its successor (Microsoft 365
Agents SDK, Python >= 3.12) replaces this one file: same Channel protocol, same teams_cards JSON (docs/TEAMS.md).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, Attachment, ConversationReference, Entity
from botframework.connector.auth import AuthenticateRequestResult, CertificateServiceClientCredentialsFactory
from msrest.universal_http.requests import ClientRetryPolicy

from bot.channels.teams_cards import (CARD_CONTENT_TYPE, SUBMIT_KEY, LinkedFile, answer_card, choice_card,
                                      citation_entity, expert_answer_card, fallback_text, needs_card, parse_submit)
from bot.channels.teams_settings import SINGLE_TENANT, TeamsSettings, check_local_mode, is_loopback
from bot.core import HelpdeskService
from bot.messages import ActionKind, FileOffer, Incoming, Reply, StoredFile
from bot.runtime import (Core, InMemorySeenIds, InOrder, Limiter, SeenIds, SlidingWindowLimiter, conversation_key,
                         database_away)
from bot.texts import (DATABASE_AWAY, EXPERT_ATTACHMENT_INLINE, NOT_TEXT, RATE_LIMITED, SORRY, TEAMS_WELCOME,
                       WELCOME_GROUP, expert_answer_text)
from escalation.delivery import DeliveryError, ExpertAnswer
from common.errors import ConfigError

logger = logging.getLogger(__name__)

# The SDK builds a connector client for every turn, and msrest's retry policy computes its status list by looking up
# 999 codes in a list of 502 (`not in`): 3.7 ms of CPU a turn (profiled under load, docs/PERFORMANCE.md). The same
# codes as a set give the same list in 0.05 ms.
ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)

CHANNEL = "teams"
ROUTE = "/api/messages"
ACK_AFTER_SECONDS = 10.0
"""Teams retries a message that gets no HTTP answer within ~15 s; a slower turn finishes after the answer."""
STOP_GRACE_SECONDS = 5.0
SEEN_CAPACITY = 10_000
RENEW_CLAIM_SECONDS = 4.0
"""How often a running turn renews the claim on its activity id (which lasts 12 s)."""
RETRY_AFTER_SECONDS = 15
"""What a worker asks of a retry that came while another worker holds the activity in progress (its claim lasts
12 s: a retry after that is answered here if the other worker died)."""
GROUP_CONVERSATIONS = {"channel", "groupChat"}

FORWARDED_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


class _SdkConfig:
    """The attribute bag botbuilder reads its settings from (APP_ID, APP_PASSWORD, APP_TYPE, APP_TENANTID)."""

    def __init__(self, **values: str) -> None:
        self.__dict__.update(values)


class _JsonEntity(Entity):
    """An entity serialized with all its keys (the SDK's Entity drops everything but ``type``)."""

    _attribute_map = {"type": {"key": "type", "type": "str"},
                      "additional_properties": {"key": "", "type": "{object}"}}


def _authentication(settings: TeamsSettings) -> ConfigurationBotFrameworkAuthentication:
    if not settings.auth:
        # Without an app id the SDK accepts requests without a token and calls the connector without one.
        return ConfigurationBotFrameworkAuthentication(_SdkConfig(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant"))
    config = _SdkConfig(APP_ID=settings.app_id, APP_PASSWORD=settings.app_password or "",
                        APP_TYPE=settings.app_type, APP_TENANTID=settings.tenant_id or "")
    credentials = None
    if settings.certificate_thumbprint and settings.certificate_key_file:
        try:
            key = settings.certificate_key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY: cannot read "
                              f"{settings.certificate_key_file}: {exc}") from None
        credentials = CertificateServiceClientCredentialsFactory(
            settings.certificate_thumbprint, key, settings.app_id,
            settings.tenant_id if settings.app_type == SINGLE_TENANT else None)
    return ConfigurationBotFrameworkAuthentication(config, credentials_factory=credentials)


class TeamsChannel:
    """Serves ``POST /api/messages`` for Teams through botbuilder's CloudAdapter and pushes expert answers."""

    name = CHANNEL

    def __init__(self, *, helpdesk: HelpdeskService | Callable[[], HelpdeskService] | Core, settings: TeamsSettings,
                 ack_after: float = ACK_AFTER_SECONDS,
                 links: Callable[[str, str], tuple[str, float]] | None = None,
                 clock: Callable[[], float] = time.monotonic, limiter: Limiter | None = None,
                 seen: SeenIds | None = None) -> None:
        self.core = helpdesk if isinstance(helpdesk, Core) else Core(helpdesk)
        self.limiter = limiter or SlidingWindowLimiter(settings.rate_per_minute, 60, clock=clock)
        """Messages per officer per minute; shared by the workers when given (``bot/shared_state.py``)."""
        self._links = links
        """Signs a download link for (file ref, name): (url, expiry); None when the server has no public URL."""
        self.settings = settings
        self.ack_after = ack_after
        self._auth = _authentication(settings)
        self._adapter = CloudAdapter(self._auth)
        self._adapter.on_turn_error = self._on_turn_error
        self._seen = seen or InMemorySeenIds(SEEN_CAPACITY)
        """Activity ids already answered: Teams retries an activity that got no HTTP answer in time."""
        self._tasks: set[asyncio.Task] = set()
        self._in_order = InOrder()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    @property
    def helpdesk(self) -> HelpdeskService:
        """The helpdesk core; given as a factory it is built on first use, so delivering alone never loads the index."""
        return self.core.helpdesk

    # -- Channel protocol -----------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The Bot Framework messaging endpoint."""
        return [web.post(ROUTE, self._on_http)]

    async def start(self) -> None:
        """Remember the server's event loop (its sends are waited for at stop); never unauthenticated in public."""
        if not self.settings.auth:
            check_local_mode(self.settings.host)
            logger.warning("!!! TEAMS AUTHENTICATION IS OFF (VRAAGBAAK_TEAMS_AUTH=off): requests to %s are not "
                           "checked. Only for local testing with the Bot Framework Emulator; never expose this "
                           "server. !!!", ROUTE)
        else:
            logger.info("Teams channel on %s for app %s (%s)", ROUTE, self.settings.app_id, self.settings.app_type)
        self._stopping = False
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Refuse new turns, let turns and sends in flight finish briefly, cancel the rest; safe to call twice."""
        self._stopping = True
        self._loop = None
        running = {task for task in self._tasks if not task.done()}
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning("Teams: %d turn(s) or send(s) still running at shutdown were cancelled", len(pending))
            # Awaited so that their clean-up (closing connector sessions) has run when stop() returns.
            await asyncio.gather(*pending, return_exceptions=True)

    async def deliver(self, reply_address: dict[str, Any], answer: ExpertAnswer,
                      files: Sequence[StoredFile] = ()) -> None:
        """Continue the stored conversation with an expert's answer (its attachments as signed download links).

        A started send is never cancelled: the SDK posts from a thread, so a cancelled send could still reach
        Teams and the retry would show the answer twice. It is awaited to its end (bounded by msrest's connection
        timeout, 100 s by default) while the event loop goes on serving chats; only a server that stops cuts it
        short, after a grace period.
        """
        try:
            reference = ConversationReference().deserialize(reply_address or {})
        except Exception as exc:  # whatever the SDK's deserializer raises on bad data
            raise DeliveryError(f"unusable Teams conversation reference: {exc}", permanent=True) from None
        if not (reference.service_url and reference.conversation and reference.conversation.id):
            raise DeliveryError("Teams conversation reference without serviceUrl or conversation id",
                                permanent=True)
        offers = [FileOffer.of(f, note=EXPERT_ATTACHMENT_INLINE) for f in files]
        send = asyncio.ensure_future(self._send_proactive(reference, answer, offers))
        if self._loop is asyncio.get_running_loop():
            self._tasks.add(send)  # stop() lets it finish
            send.add_done_callback(self._tasks.discard)
        try:
            await asyncio.shield(send)
        except asyncio.CancelledError:
            if not send.done():  # the caller was cancelled (a forced stop), not the send: it goes on
                logger.warning("Teams: delivery cancelled while an expert answer was being sent; the send goes on "
                               "and the answer stays queued, so it may be shown twice")
            raise

    # -- HTTP -----------------------------------------------------------------------------------------------

    async def _on_http(self, request: web.Request) -> web.Response:
        """Authenticate, check the tenant, drop retries, then run the turn (answering HTTP within Teams' limit)."""
        if self._stopping:
            return web.json_response({"error": "shutting down"}, status=503)
        if not self.settings.auth:
            # Unauthenticated, anyone reaching the port could ask questions, open tickets and send mail.
            refusal = _not_local(request)
            if refusal is not None:
                logger.warning("Teams request refused: auth is off and %s", refusal)
                return web.json_response({"error": "only local requests when auth is off"}, status=403)
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.json_response({"error": "expected application/json"}, status=415)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        if not isinstance(body, dict) or not body.get("type"):
            return web.json_response({"error": "not an activity"}, status=400)
        try:
            activity = Activity().deserialize(body)
        except Exception:  # the SDK's deserializer has no narrower contract
            return web.json_response({"error": "not an activity"}, status=400)
        auth = await self._authenticate(activity, request.headers.get("Authorization", ""))
        if isinstance(auth, web.Response):
            return auth
        tenant = _tenant_id(body)
        if not self.settings.tenant_allowed(tenant):
            logger.warning("Teams activity from tenant %s refused (not in VRAAGBAAK_TEAMS_ALLOWED_TENANTS)", tenant)
            return web.json_response({"error": "tenant not allowed"}, status=403)
        if not self.settings.auth and not is_loopback(urlsplit(activity.service_url or "").hostname):
            # Unauthenticated, the bot would post wherever a request tells it to: only local connectors.
            logger.warning("Teams activity refused: auth is off and serviceUrl %s is not on this machine",
                           activity.service_url)
            return web.json_response({"error": "serviceUrl must be local when auth is off"}, status=403)
        key = _seen_key(activity)
        if key is not None and not await asyncio.to_thread(self._seen.first_time, key):  # off the loop: a database
            if not await asyncio.to_thread(self._seen.answered, key):
                # Another worker has it in progress, or had it when it died: "try again later", and a retry once
                # its claim has run out is answered here. Had it answered by then, the retry is a duplicate.
                logger.info("Teams activity %s is in progress elsewhere; asked to retry", activity.id)
                return web.json_response({"error": "in progress"}, status=503,
                                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            logger.info("Teams activity %s delivered again (retry); not answered twice", activity.id)
            return web.Response(status=200)
        task = asyncio.create_task(self._turn_then_done(auth, activity, key))
        self._tasks.add(task)
        task.add_done_callback(self._turn_done)
        done, _ = await asyncio.wait({task}, timeout=self.ack_after)
        if not done:
            logger.warning("Teams turn for activity %s still running after %g s; answered HTTP early",
                           activity.id, self.ack_after)
            return web.Response(status=202)
        if task.cancelled() or task.exception() is not None:
            return web.json_response({"error": "internal error"}, status=500)
        invoke: InvokeResponse | None = task.result()
        if invoke:
            return web.json_response(serializer_helper(invoke.body), status=invoke.status)
        return web.Response(status=200)

    async def _authenticate(self, activity: Activity, header: str) -> AuthenticateRequestResult | web.Response:
        try:
            return await self._auth.authenticate_request(activity, header)
        except PermissionError as exc:
            reason = str(exc)
        except OSError as exc:  # the OpenID metadata of the Bot Framework could not be fetched
            logger.warning("Teams request not checked: Bot Framework signing keys unavailable (%s)", exc)
            return web.json_response({"error": "authentication unavailable"}, status=503)
        except Exception as exc:  # malformed or foreign tokens surface as many exception types
            reason = type(exc).__name__
        logger.warning("Teams request refused: not authenticated (%s)", reason)
        return web.json_response({"error": "unauthorized"}, status=401)

    async def _turn_then_done(self, auth: AuthenticateRequestResult, activity: Activity,
                              key: str | None) -> InvokeResponse | None:
        """The turn; then its activity id counts as answered (a turn cut off by a stop does not: its retry is)."""
        renewing = asyncio.create_task(self._keep_claimed(key)) if key is not None else None
        try:
            return await self._run_turn(auth, activity)
        except asyncio.CancelledError:
            key = None  # cut off: the retry is answered
            raise
        finally:  # answered, or apologised for after an error: a retry is not answered again
            if renewing is not None:
                renewing.cancel()
            if key is not None:
                await asyncio.to_thread(self._seen.done, key)

    async def _keep_claimed(self, key: str) -> None:
        """While a turn runs (waiting behind the conversation's earlier turns, a slow search), its id stays claimed:
        a retry meanwhile is asked to come back, not answered a second time."""
        while True:
            await asyncio.sleep(RENEW_CLAIM_SECONDS)
            await asyncio.to_thread(self._seen.renew, key)

    async def _run_turn(self, auth: AuthenticateRequestResult, activity: Activity) -> InvokeResponse | None:
        """One turn, after the earlier turns of its conversation, so the core sees them in the order they came in."""
        clients: list[Any] = []

        async def logic(context: TurnContext) -> None:
            clients.append(context.turn_state.get(self._adapter.BOT_CONNECTOR_CLIENT_KEY))
            await self._on_turn(context)

        try:
            async with self._in_order(_conversation_key(activity)):
                return await self._adapter.process_activity(auth, activity, logic)
        finally:
            await _close_connectors(clients)

    def _turn_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Teams turn failed outside the bot logic", exc_info=task.exception())

    # -- turns ----------------------------------------------------------------------------------------------

    async def _on_turn(self, context: TurnContext) -> None:
        """Dispatch one activity: a message (typed or a card button) or a conversation update."""
        kind = context.activity.type
        if kind == ActivityTypes.message:
            await self._on_message(context)
        elif kind == ActivityTypes.conversation_update:
            await self._on_conversation_update(context)
        else:
            logger.debug("Teams activity of type %s ignored", kind)

    async def _on_message(self, context: TurnContext) -> None:
        """A question or command, or the data of one of our card buttons."""
        activity = context.activity
        value = activity.value if isinstance(activity.value, dict) else None
        group = _conversation_type(activity) in GROUP_CONVERSATIONS
        pressed = bool(value and value.get(SUBMIT_KEY))
        if group and not pressed and not _mentions(activity, activity.recipient.id if activity.recipient else None):
            return  # channel talk not addressed to the bot
        allowed, tell = await asyncio.to_thread(self.limiter.allow, _user_id(activity))
        if not allowed:
            if tell:
                await context.send_activity(RATE_LIMITED)
            return
        if pressed:
            await self._on_submit(context, value)
            return
        text = _message_text(activity)
        if not text:
            await context.send_activity(NOT_TEXT if activity.attachments else TEAMS_WELCOME)
            return
        await self._typing(context)
        incoming = _incoming(activity, text)
        reply = await self.core.call(lambda helpdesk: helpdesk.handle(incoming))
        await context.send_activity(_reply_activity(reply, self._linked(reply.files)))

    async def _on_submit(self, context: TurnContext, value: dict[str, Any]) -> None:
        """👍 / 👎 / "Vraag een expert" pressed on an answer card, or a choice of a guided walk."""
        press = parse_submit(value)
        if press is None:
            logger.warning("Teams card submit with unknown data ignored (%.40r)", value.get(SUBMIT_KEY))
            return
        incoming = _incoming(context.activity, press.command or "/expert")
        reply = await self.core.call(lambda helpdesk: helpdesk.press(incoming, press))
        if press.kind in (ActionKind.FEEDBACK_UP, ActionKind.FEEDBACK_DOWN):
            await context.send_activity(reply.text)  # a short thank-you, not a card
        else:
            await context.send_activity(_reply_activity(reply, self._linked(reply.files)))

    async def _on_conversation_update(self, context: TurnContext) -> None:
        """Welcome when the bot itself joins a chat, team or group chat (not for every new member)."""
        activity = context.activity
        bot_id = activity.recipient.id if activity.recipient else None
        if not any(m.id == bot_id for m in activity.members_added or []):
            return
        text = TEAMS_WELCOME
        if _conversation_type(activity) in GROUP_CONVERSATIONS:
            text += "\n\n" + WELCOME_GROUP.format(name=(activity.recipient.name or "Vraagbaak"))
        await context.send_activity(text)

    async def _typing(self, context: TurnContext) -> None:
        try:
            await context.send_activity(Activity(type=ActivityTypes.typing))
        except Exception as exc:  # a lost typing indicator is no reason to lose the answer
            logger.warning("Teams typing indicator not sent: %s", exc)

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        """The one catch-all: log with the traceback, tell the officer politely, never show the error."""
        logger.error("Teams turn failed for activity %s", context.activity.id, exc_info=error)
        try:
            await context.send_activity(DATABASE_AWAY if database_away(error) else SORRY)
        except Exception:  # the connector itself may be what failed
            logger.exception("Teams apology not sent either")

    # -- proactive ------------------------------------------------------------------------------------------

    async def _send_proactive(self, reference: ConversationReference, answer: ExpertAnswer,
                              files: Sequence[FileOffer] = ()) -> None:
        failures: list[Exception] = []
        clients: list[Any] = []

        async def send(context: TurnContext) -> None:
            clients.append(context.turn_state.get(self._adapter.BOT_CONNECTOR_CLIENT_KEY))
            # A new message in the conversation (a channel thread's id already names the thread), not a reply
            # to the synthetic continuation activity.
            context.activity.id = None
            try:
                await context.send_activity(_expert_activity(answer, self._linked(files)))
            except Exception as exc:  # reported to the delivery queue below, with its retry policy
                failures.append(exc)

        try:
            await self._adapter.continue_conversation(reference, send, bot_app_id=self._bot_app_id)
        except Exception as exc:  # token or connector creation failed before the callback ran
            failures.append(exc)
        finally:
            await _close_connectors(clients)
        if failures:
            raise _delivery_error(failures[0])

    def _linked(self, files: Sequence[FileOffer]) -> list[LinkedFile]:
        """Files with fresh signed download links (Teams cannot take a file from a bot in a chat without Graph)."""
        linked = []
        for f in files:
            url, until = self._links(f.ref, f.name) if self._links is not None else (None, None)
            linked.append(LinkedFile(name=f.name, size_text=f.size_text, note=f.note, url=url,
                                     valid_until=time.strftime("%d-%m-%Y", time.localtime(until)) if until else None))
        return linked

    @property
    def _bot_app_id(self) -> str:
        return self.settings.app_id if self.settings.auth else ""


# -- activity helpers ---------------------------------------------------------------------------------------


def _seen_key(activity: Activity) -> str | None:
    """What identifies an activity across retries (None: it carries no id, and is never taken for a retry)."""
    if not activity.id:
        return None
    conversation = activity.conversation.id if activity.conversation else ""
    return f"teams|{conversation}|{activity.id}"


def _tenant_id(body: dict[str, Any]) -> str | None:
    """The tenant from channelData.tenant.id or conversation.tenantId (the SDK's models drop the latter)."""
    channel_data = body.get("channelData") if isinstance(body.get("channelData"), dict) else {}
    tenant = channel_data.get("tenant") if isinstance(channel_data.get("tenant"), dict) else {}
    conversation = body.get("conversation") if isinstance(body.get("conversation"), dict) else {}
    found = tenant.get("id") or conversation.get("tenantId")
    return str(found) if found else None


def _not_local(request: web.Request) -> str | None:
    """Why a request did not come from this machine, or None when it did."""
    if not is_loopback(request.remote):
        return f"the request came from {request.remote or 'an unknown address'}"
    forwarded = next((name for name in FORWARDED_HEADERS if name in request.headers), None)
    if forwarded is not None:
        return f"the request came through a proxy ({forwarded} header)"
    return None


async def _close_connectors(clients: list[Any]) -> None:
    """Close the connector clients the SDK opened for a turn; it never does, leaving their sockets to the GC."""
    for client in clients:
        if client is None:
            continue
        try:
            await client.__aexit__(None, None, None)  # what leaving ``async with client:`` does
        except Exception:  # a session that does not close cleanly is no reason to fail the turn
            logger.debug("Teams connector client not closed cleanly", exc_info=True)


def _conversation_type(activity: Activity) -> str:
    return (activity.conversation.conversation_type if activity.conversation else None) or "personal"


def _mention_entities(activity: Activity) -> list[dict[str, Any]]:
    out = []
    for entity in activity.entities or []:
        if getattr(entity, "type", None) == "mention":
            out.append(getattr(entity, "additional_properties", None) or {})
    return out


def _mentions(activity: Activity, bot_id: str | None) -> bool:
    return bool(bot_id) and any((m.get("mentioned") or {}).get("id") == bot_id for m in _mention_entities(activity))


def _message_text(activity: Activity) -> str:
    """The officer's words: the bot's @mention removed, other mentions kept as plain names."""
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for mention in _mention_entities(activity):
        if (mention.get("mentioned") or {}).get("id") == bot_id and mention.get("text"):
            text = text.replace(mention["text"], " ")
    text = re.sub(r"</?at>", "", text)
    return " ".join(html.unescape(text).split())


def _user_id(activity: Activity) -> str:
    user = activity.from_property
    return (user.aad_object_id or user.id or "unknown") if user else "unknown"


def _conversation_key(activity: Activity) -> str:
    """The core's conversation: the chat, or in a channel or group chat the officer's own thread of questions."""
    return conversation_key(CHANNEL, activity.conversation.id if activity.conversation else "", _user_id(activity),
                            shared=_conversation_type(activity) in GROUP_CONVERSATIONS)


def _incoming(activity: Activity, text: str) -> Incoming:
    """A Teams message as the core sees it; the ConversationReference (as data) is the reply address."""
    user = activity.from_property
    reference = TurnContext.get_conversation_reference(activity).serialize()
    return Incoming(channel=CHANNEL, conversation_id=_conversation_key(activity), user_id=_user_id(activity),
                    text=text, user_name=user.name if user else None, reply_address=reference,
                    shared=_conversation_type(activity) in GROUP_CONVERSATIONS)


def _card_activity(card: dict[str, Any], *, summary: str, entity: dict[str, Any] | None = None) -> Activity:
    # No activity.text: Teams would show it as a second message above the card. ``summary`` and the card's
    # fallbackText are the Bot Framework's plain-text fallbacks for clients without cards.
    activity = Activity(type=ActivityTypes.message, summary=summary,
                        attachments=[Attachment(content_type=CARD_CONTENT_TYPE, content=card)])
    if entity is not None:
        extra = dict(entity)
        json_entity = _JsonEntity(type=extra.pop("type"))
        json_entity.additional_properties = extra
        activity.entities = [json_entity]
    return activity


def _reply_activity(reply: Reply, files: list[LinkedFile] | None = None) -> Activity:
    """A reply with sources, files or buttons as a card with citation entities; anything else as plain text."""
    if not needs_card(reply):
        return Activity(type=ActivityTypes.message, text=reply.text)
    if any(a.kind is ActionKind.CHOICE for a in reply.actions):
        return _card_activity(choice_card(reply), summary=reply.text)
    return _card_activity(answer_card(reply, files), summary=fallback_text(reply, files),
                          entity=citation_entity(reply))


def _expert_activity(answer: ExpertAnswer, files: list[LinkedFile] | None = None) -> Activity:
    return _card_activity(expert_answer_card(answer, files), summary=expert_answer_text(answer))


def _delivery_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status in (403, 404):
        # 403: the bot was removed or blocked; 404: the conversation no longer exists. Retrying will not help.
        return DeliveryError(f"Teams conversation unreachable (HTTP {status}): bot removed or conversation gone",
                             permanent=True)
    detail = f"HTTP {status}" if status else type(exc).__name__
    return DeliveryError(f"Teams delivery failed ({detail})")
