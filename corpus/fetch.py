"""Read a source's bytes: local files and globs, or http(s) with conditional requests and limits."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from corpus.errors import SourceReadError
from corpus.manifest import SourceSpec

MAX_BYTES = 50 * 1024 * 1024
TIMEOUT_SECONDS = 30.0
USER_AGENT = "vraagbaak-corpus-refresh (+https://www.vvsg.be)"


@dataclass(frozen=True)
class RawFile:
    """Bytes of one file of a source and the link that cites it."""

    name: str
    data: bytes
    link: str | None
    path: Path | None = None
    """Where a local file lives (a template is handed out from there)."""


@dataclass(frozen=True)
class FetchResult:
    """What a fetch found; ``not_modified`` means an HTTP 304 (keep the previous chunks)."""

    files: tuple[RawFile, ...] = ()
    not_modified: bool = False
    validators: dict[str, str] = field(default_factory=dict)
    """ETag / Last-Modified to send next time."""


def fetch_source(spec: SourceSpec, base_dir: Path, *, validators: dict[str, str] | None = None,
                 timeout: float = TIMEOUT_SECONDS, max_bytes: int = MAX_BYTES) -> FetchResult:
    """Read every file of a source; raise ``SourceReadError`` with the reason when that fails."""
    if spec.is_remote:
        return _fetch_http(spec, validators or {}, timeout=timeout, max_bytes=max_bytes)
    return _read_local(spec, base_dir, max_bytes=max_bytes)


def resolve_location(spec: SourceSpec, base_dir: Path) -> Path:
    """A local source's file or glob pattern, relative locations taken from the manifest's folder."""
    path = Path(spec.location).expanduser()
    return path if path.is_absolute() else base_dir / path


def _read_local(spec: SourceSpec, base_dir: Path, *, max_bytes: int) -> FetchResult:
    pattern = resolve_location(spec, base_dir)
    if glob.has_magic(str(pattern)):
        paths = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True) if Path(p).is_file())
        if not paths:
            raise SourceReadError(f"no files match {spec.location}")
    elif pattern.is_file():
        paths = [pattern]
    else:
        raise SourceReadError(f"file not found: {pattern}")
    files = []
    for path in paths:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceReadError(f"{path.name} is {size} bytes, over the {max_bytes}-byte limit")
        files.append(RawFile(name=path.name, data=path.read_bytes(), link=_local_link(spec, path, len(paths)),
                             path=path.resolve()))
    return FetchResult(files=tuple(files))


def _local_link(spec: SourceSpec, path: Path, count: int) -> str:
    if spec.link:
        # A link ending in "/" is a folder on the web that mirrors the files one by one.
        return spec.link + path.name if spec.link.endswith("/") and count > 1 else spec.link
    return path.resolve().as_uri()


def _fetch_http(spec: SourceSpec, validators: dict[str, str], *, timeout: float, max_bytes: int) -> FetchResult:
    headers = {"User-Agent": USER_AGENT}
    if validators.get("etag"):
        headers["If-None-Match"] = validators["etag"]
    if validators.get("last_modified"):
        headers["If-Modified-Since"] = validators["last_modified"]
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            with client.stream("GET", spec.location, headers=headers) as response:
                if response.status_code == 304:
                    return FetchResult(not_modified=True, validators=validators)
                if response.status_code >= 400:
                    raise SourceReadError(f"HTTP {response.status_code} from {spec.location}")
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise SourceReadError(f"{spec.location} is {declared} bytes, over the {max_bytes}-byte limit")
                body = bytearray()
                for part in response.iter_bytes():
                    body.extend(part)
                    if len(body) > max_bytes:
                        raise SourceReadError(f"{spec.location} is over the {max_bytes}-byte limit")
                new_validators = {
                    key: value
                    for key, value in (("etag", response.headers.get("ETag")),
                                       ("last_modified", response.headers.get("Last-Modified")))
                    if value
                }
                name = spec.location.rstrip("/").rsplit("/", 1)[-1] or spec.id
                content_type = response.headers.get("Content-Type", "")
                if "html" in content_type and not name.lower().endswith((".html", ".htm")):
                    name += ".html"
                return FetchResult(files=(RawFile(name=name, data=bytes(body), link=spec.link or spec.location),),
                                   validators=new_validators)
    except httpx.TimeoutException:
        raise SourceReadError(f"timed out after {timeout:g} s fetching {spec.location}") from None
    except httpx.HTTPError as exc:
        raise SourceReadError(f"could not fetch {spec.location}: {exc.__class__.__name__}: {exc}") from None
