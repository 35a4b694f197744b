"""The sources manifest: which documents make up the corpus and how to cite them (docs/CORPUS.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from corpus.errors import ManifestError

KINDS = ("legislation", "guidance", "case", "faq", "template")
FORMATS = ("pdf", "html", "bwb-xml", "markdown", "text", "csv", "jsonl", "docx", "odt", "cases")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIELDS = {"id", "title", "kind", "language", "location", "format", "effective_date", "columns", "link",
           "online", "optional", "notes", "catalogue", "valid_from", "valid_until"}


@dataclass(frozen=True)
class SourceSpec:
    """One manifest entry."""

    id: str
    title: str
    kind: str
    location: str
    """A file, a glob of files (relative to the manifest), or an http(s) URL."""
    language: str = "nl"
    format: str | None = None
    """Auto-detected from the name and bytes unless given."""
    effective_date: str | None = None
    columns: dict[str, object] = field(default_factory=dict)
    """Role -> column mapping for csv / jsonl record files."""
    link: str | None = None
    """Base link used in citations (the official address); defaults to the URL for web sources."""
    online: bool = False
    """True for sources only refreshed when network access is allowed (``--online``)."""
    optional: bool = False
    """True for a local source that may not exist yet (published expert answers): missing is skipped, not failed."""
    catalogue: str | None = None
    """For a template source: the file name of the YAML side file that describes each template (docs/CORPUS.md)."""
    valid_from: str | None = None
    valid_until: str | None = None
    """The window the whole source is valid in ("geldig vanaf / tot"); a document's own window wins."""

    @property
    def is_remote(self) -> bool:
        """True when the location is an http(s) URL."""
        return self.location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Manifest:
    """All sources, with the folder that relative locations are resolved against."""

    path: Path
    sources: tuple[SourceSpec, ...]

    @property
    def base_dir(self) -> Path:
        """Folder of the manifest file."""
        return self.path.parent

    def get(self, source_id: str) -> SourceSpec:
        """The source with this id."""
        for spec in self.sources:
            if spec.id == source_id:
                return spec
        raise ManifestError(f"no source {source_id!r} in {self.path}")


def bundled_manifest_path() -> Path:
    """The manifest shipped with the package (sample corpus plus official sources)."""
    return Path(str(resources.files("corpus").joinpath("sources.yaml")))


def load_manifest(path: Path | None = None, *, home: Path | None = None) -> Manifest:
    """Read and validate a manifest; every problem is reported with the source id and field.

    ``${VRAAGBAAK_HOME}`` in a local location becomes ``home``, the data dir (published expert answers, shared
    cases); without ``home`` it stays as written, so such a source is found only by a caller that knows the data
    dir. No other variable is expanded: settings come from the command's environment, not the manifest's."""
    path = Path(path) if path else bundled_manifest_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path} is not valid YAML: {exc}") from None
    entries = (data or {}).get("sources") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ManifestError(f"manifest {path} must have a non-empty 'sources' list")
    specs = [_parse_entry(entry, n, home) for n, entry in enumerate(entries, 1)]
    ids = [s.id for s in specs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ManifestError(f"manifest {path}: duplicate source ids {', '.join(duplicates)}")
    return Manifest(path=path.resolve(), sources=tuple(specs))


def _parse_entry(entry: object, n: int, home: Path | None) -> SourceSpec:
    if not isinstance(entry, dict):
        raise ManifestError(f"source #{n} must be a mapping")
    name = str(entry.get("id", f"#{n}"))
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ManifestError(f"source {name}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("id", "title", "kind", "location"):
        if not entry.get(required):
            raise ManifestError(f"source {name}: '{required}' is required")
    if not _ID.match(name):
        raise ManifestError(f"source {name}: id must be lowercase letters, digits, '-' or '_'")
    kind = str(entry["kind"])
    if kind not in KINDS:
        raise ManifestError(f"source {name}: kind must be one of {', '.join(KINDS)}")
    fmt = entry.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise ManifestError(f"source {name}: format must be one of {', '.join(FORMATS)}")
    dates = {}
    for key in ("effective_date", "valid_from", "valid_until"):
        value = entry.get(key)
        dates[key] = str(value) if value is not None else None
        if dates[key] is not None and not _DATE.match(dates[key]):
            raise ManifestError(f"source {name}: {key} must be YYYY-MM-DD")
    date = dates["effective_date"]
    catalogue = entry.get("catalogue")
    if catalogue is not None and (kind != "template" or not isinstance(catalogue, str)
                                  or Path(catalogue).name != catalogue):
        raise ManifestError(f"source {name}: catalogue is the file name of a template source's side file")
    columns = entry.get("columns") or {}
    if not isinstance(columns, dict):
        raise ManifestError(f"source {name}: columns must be a mapping of role to column")
    if fmt in ("csv", "jsonl") and not {"id", "text"} <= set(columns):
        raise ManifestError(f"source {name}: record files need columns 'id' and 'text'")
    location = str(entry["location"])
    if not location.startswith(("http://", "https://")):
        # ${VRAAGBAAK_HOME} lets the bundled manifest point into the data dir (published expert answers).
        location = location.replace("${VRAAGBAAK_HOME}", str(home)) if home is not None else location
    return SourceSpec(
        id=name, title=str(entry["title"]), kind=kind, location=location,
        language=str(entry.get("language", "nl")), format=fmt, effective_date=date, columns=columns,
        link=entry.get("link"), online=bool(entry.get("online", False)),
        optional=bool(entry.get("optional", False)), catalogue=catalogue, valid_from=dates["valid_from"],
        valid_until=dates["valid_until"],
    )


