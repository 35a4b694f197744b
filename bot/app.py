"""Composition root: settings -> embedder, vector index, retriever, refresher, audit log, helpdesk."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.settings import BotSettings
from common.errors import ConfigError
from retrieval.settings import RetrievalSettings

# Each component's module is imported where it is built: a command that only lists tickets must not pay for the
# embedder, the index, the web server or the mail code (issue 13: `vraagbaak tickets list` in <= 0.5 s).
if TYPE_CHECKING:
    from bot.audit import AuditLog
    from bot.core import HelpdeskService
    from bot.downloads import Download, DownloadLinks
    from bot.escalator import PoolEscalator
    from bot.shared_state import SharedLease, SharedState, SharedWalkStore
    from bot.server import ServerSettings
    from corpus.refresh import Refresher
    from escalation.pool import ExpertPool
    from escalation.service import EscalationService
    from escalation.settings import EscalationSettings
    from retrieval.embedders import Embedder, QueryCache
    from retrieval.search import HybridRetriever
    from retrieval.store import IndexStore
    from retrieval.vector_index import VectorIndex

logger = logging.getLogger(__name__)


@dataclass
class App:
    """Builds the long-lived components lazily, each once, from the settings objects."""

    settings: RetrievalSettings
    bot_settings: BotSettings = field(default_factory=BotSettings)
    embedder_override: Embedder | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """The environment as the command read it once at start: the optional parts (mail, server, channels) take their
    settings from it when they are first built, so a bad Teams setting cannot stop `vraagbaak tickets list`."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], **options: Any) -> "App":
        """The app of a process whose settings are ``env`` (``os.environ``, read by the command line only)."""
        env = dict(env)
        return cls(RetrievalSettings.from_env(env), BotSettings.from_env(env), env=env, **options)

    @cached_property
    def embedder(self) -> Embedder:
        """The configured embedder (loaded on first use: model loading takes a moment)."""
        from retrieval.embedders import make_embedder

        return self.embedder_override or make_embedder(self.settings.embedder)

    @cached_property
    def query_embedder(self) -> QueryCache:
        """The embedder for questions: routing and retrieval share its vectors of the same text."""
        from retrieval.embedders import QueryCache

        return QueryCache(self.embedder)

    @cached_property
    def vectors(self) -> VectorIndex:
        """chromadb on disk, or the configured Chroma server."""
        from retrieval.vector_index import ChromaIndex

        return ChromaIndex(path=self.settings.index_dir / "chroma", url=self.settings.chroma_url,
                           ef_search=self.settings.hnsw_ef_search,
                           ef_construction=self.settings.hnsw_ef_construction)

    @cached_property
    def store(self) -> IndexStore:
        """Index generations in the data dir, or in the database the workers share (``VRAAGBAAK_INDEX_STORE``)."""
        if self.settings.index_store == "database":
            from retrieval.database_store import DatabaseGenerationStore

            self.settings.home.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
            return DatabaseGenerationStore(self.settings.database_url)
        from retrieval.store import GenerationStore

        return GenerationStore(self.settings.index_dir)

    def refresher(self) -> Refresher:
        """A refresher writing into this app's index store (its data dir keeps the caches)."""
        from corpus.refresh import Refresher

        return Refresher(home=self.settings.home, embedder=self.embedder, vectors=self.vectors, store=self.store)

    @cached_property
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever over the active generation."""
        from bot.routing import load_routing
        from retrieval.search import HybridRetriever

        return HybridRetriever(store=self.store, vectors=self.vectors, embedder=self.query_embedder,
                               ranker=load_routing(self.embedder.name).ranker)

    @cached_property
    def audit(self) -> AuditLog:
        """The question / reply log."""
        from bot.audit import LEGACY_FILE, AuditLog, secret_key

        home = self.settings.home
        home.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
        return AuditLog(self.escalation_settings.database_url, key=secret_key("pseudonym", home, self.env),
                        legacy=home / LEGACY_FILE)

    @cached_property
    def helpdesk(self) -> HelpdeskService:
        """The helpdesk core, with the generative composer when an LLM endpoint is configured."""
        from bot.core import HelpdeskService
        from bot.shared_state import SharedConversationMemory, SharedRateLimiter

        composer = None
        if self.bot_settings.llm is not None:
            from retrieval.generative import GenerativeComposer

            llm = self.bot_settings.llm
            composer = GenerativeComposer(base_url=llm.base_url, model=llm.model, api_key=llm.api_key,
                                          timeout=llm.timeout_seconds)
        return HelpdeskService.create(retriever=self.retriever, audit=self.audit, model=self.embedder.name,
                                      embed=self.query_embedder.embed_query, composer=composer,
                                      escalator=self.escalator, walks=self.walks,
                                      memory=SharedConversationMemory(self.shared_state),
                                      ticket_limit=SharedRateLimiter(self.shared_state, "tickets",
                                                                     self.bot_settings.tickets_per_hour, 3600))

    @cached_property
    def shared_state(self) -> SharedState:
        """What the workers share besides tickets (conversation memory, rate limits, handled activity ids,
        `/procedure` walks), in the ticket database: one worker or several serve alike."""
        from bot.shared_state import SharedState

        self.escalation_settings.home.mkdir(parents=True, exist_ok=True)
        return SharedState(self.escalation_settings.database_url)

    def poller_lease(self) -> SharedLease:
        """The lease that lets one worker of a deployment poll the mailbox, remind and purge, renewed every pass.

        Held for three poll intervals and at least ten minutes, longer than a pass can take (a pass waits up to five
        minutes for one slow delivery), so two workers never poll at once; a dead holder is replaced after that.
        """
        from bot.shared_state import SharedLease

        return SharedLease(self.shared_state, "escalation-poller", _holder(),
                           seconds=max(3 * self.escalation_settings.poll_seconds, 600.0))

    @cached_property
    def walks(self) -> SharedWalkStore:
        """Where each conversation is in `/procedure` (kept across restarts, seen by every worker)."""
        from bot.shared_state import SharedWalkStore

        return SharedWalkStore(self.shared_state)

    @cached_property
    def escalation_settings(self) -> EscalationSettings:
        """Pool, database and mail settings."""
        from escalation.settings import EscalationSettings

        return EscalationSettings.from_env(self.settings.home, self.env)

    @cached_property
    def pool(self) -> ExpertPool | None:
        """The expert pool, when ``VRAAGBAAK_EXPERTS_FILE`` names one."""
        from escalation.pool import load_pool

        path = self.escalation_settings.experts_file
        return load_pool(path) if path else None

    @cached_property
    def tickets(self) -> EscalationService:
        """The expert-pool service (tickets in SQLite under the data dir unless VRAAGBAAK_DATABASE_URL is set)."""
        from bot.audit import secret_key
        from escalation.mail import MessageIds
        from escalation.mailer import SmtpMailer
        from escalation.service import EscalationService
        from escalation.store import TicketStore

        es = self.escalation_settings
        es.home.mkdir(parents=True, exist_ok=True)
        return EscalationService(
            store=TicketStore(es.database_url), pool=self.pool,
            ids=MessageIds(secret_key("mail", es.home, self.env), es.mail_domain),
            mailer=SmtpMailer(es.smtp) if es.smtp else None, mail_from=es.mail_from, reply_to=es.reply_to,
            archive_dir=es.home / "mail-archive", trusted_authserv=es.trusted_authserv)

    @cached_property
    def escalator(self) -> PoolEscalator:
        """The helpdesk's escalation port."""
        from bot.escalator import PoolEscalator

        return PoolEscalator(self.tickets, pseudonym=self.audit.pseudonym)

    def mailbox(self):
        """The expert mailbox over IMAP, or None when not configured."""
        imap = self.escalation_settings.imap
        if imap is None:
            return None
        from escalation.mailbox import ImapMailbox

        return ImapMailbox(host=imap.host, port=imap.port, user=imap.user, password=imap.password,
                           security=imap.security, folder=imap.folder)

    @cached_property
    def server_settings(self) -> ServerSettings:
        """Listen address and public address of `vraagbaak serve`."""
        from bot.server import ServerSettings

        return ServerSettings.from_env(self.env)

    @cached_property
    def downloads(self) -> DownloadLinks | None:
        """Signed download links, when the server has a public address (``VRAAGBAAK_PUBLIC_URL``)."""
        from bot.audit import secret_key
        from bot.downloads import DownloadLinks

        server = self.server_settings
        if not server.public_url:
            return None
        return DownloadLinks(key=secret_key("download", self.settings.home, self.env), base_url=server.public_url,
                             ttl_seconds=server.download_days * 86400)

    def resolve_download(self, ref: str) -> Download | None:
        """The file a signed link names: an expert's attachment ("attachment:ID:DIGEST") or a template of the
        served index ("template:UNIT"); None when gone, changed since the index was built, or unknown."""
        from bot.downloads import Download
        from bot.resources import file_digest, template_offer

        kind, _, ident = ref.partition(":")
        number, _, digest = ident.partition(":")
        if kind == "attachment" and number.isdigit() and len(number) <= 12:
            found = self.tickets.attachment(int(number))
            if found is None or not digest or not found.sha256.startswith(digest):
                return None  # erased, or (after an erasure) another file under a reused number
            return Download(found.path, found.name, found.content_type)
        if kind == "template":
            chunk = next((c for c in self.retriever.chunks if c.unit_id == ident and c.kind == "template"), None)
            offer = template_offer(chunk) if chunk is not None else None
            if offer is None or file_digest(offer.path) != chunk.get("sha256"):
                return None
            return Download(offer.path, offer.name, offer.content_type)
        return None

    def download_routes(self) -> list:
        """The download route for `vraagbaak serve` (none without a public address: nothing links to it)."""
        from bot.downloads import download_routes

        links = self.downloads
        return download_routes(links, self.resolve_download) if links is not None else []

    def channels(self) -> list:
        """The chat channels configured in the environment (each imports its SDK only when it is on)."""
        from bot.channels.teams_settings import TeamsSettings

        from bot.runtime import Core
        from bot.shared_state import SharedLease, SharedRateLimiter, SharedSeenIds, SharedUpdateInbox

        # The helpdesk is handed over lazily: building it needs an index, delivering an expert answer does not.
        # One Core for all channels: the first question in any of them builds it, once.
        core = Core(lambda: self.helpdesk)
        found: list = []
        if self.env.get("TELEGRAM_BOT_TOKEN"):
            from bot.channels.telegram import LEASE_CHECK_SECONDS as TELEGRAM_LEASE_CHECK_SECONDS
            from bot.channels.telegram import TelegramChannel

            found.append(TelegramChannel.from_env(
                helpdesk=core, home=self.settings.home, env=self.env,
                limiter=lambda rate: SharedRateLimiter(self.shared_state, "telegram", rate, 60),
                poll_lease=SharedLease(self.shared_state, "telegram-polling", _holder(),
                                       seconds=3 * TELEGRAM_LEASE_CHECK_SECONDS),
                inbox=SharedUpdateInbox(self.shared_state, _holder())))
        teams = TeamsSettings.from_env(self.env)
        if teams is not None:
            from bot.channels.teams import TeamsChannel

            links = self.downloads
            if links is None:
                logger.warning("VRAAGBAAK_PUBLIC_URL is not set: Teams officers get no download links for files")
            found.append(TeamsChannel(helpdesk=core, settings=teams, links=links.url if links is not None else None,
                                      limiter=SharedRateLimiter(self.shared_state, "teams", teams.rate_per_minute, 60),
                                      seen=SharedSeenIds(self.shared_state)))
        return found

    def readiness(self) -> dict[str, str]:
        """What `/readyz` reports: the index has an active generation and the ticket database answers; "ok" or
        what is wrong, never an exception."""
        checks: dict[str, str] = {}
        if "retriever" in self.__dict__:
            # Loaded: this worker answers from it whatever the shared store says now (its database may be away).
            checks["index"] = "ok"
            checks["serving"] = self.retriever.generation  # workers may differ for a moment after a refresh
        else:
            try:
                # The generation a question would be answered from; the retriever loads it on the first question
                # and moves to a newer one on the question after a refresh.
                active = self.store.active()
                checks["index"] = "ok" if active is not None else "no index: run `vraagbaak corpus refresh`"
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                checks["index"] = f"unreadable: {type(exc).__name__}"
        try:
            self.tickets.store.ping()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - e.g. PostgreSQL down
            checks["database"] = f"unreachable: {type(exc).__name__}"
        return checks

    def deliverers(self) -> dict:
        """Channels that can push expert answers, by name (for one-off commands such as `tickets poll`)."""
        try:
            return {channel.name: channel for channel in self.channels()}
        except ConfigError as exc:
            # Answers wait in the database until the channel is configured right; nothing is lost.
            logger.warning("chat channels not available, answers stay queued: %s", exc)
            return {}


def _holder() -> str:
    """Who holds a lease: this machine and process (and a nonce, for a pid reused after a restart)."""
    import os
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
