"""Files an expert attaches to an answer: which ones the officer gets, under what name, and where they are kept.

An attachment is passed on only when its extension is on the allow-list *and* its bytes are what the extension
claims (a PDF starts with ``%PDF-``; Office and OpenDocument files are ZIP packages with the right inner parts and no
macros). Everything else is refused with a reason the officer and the maintainer can read; nothing is opened or
converted here. Names come from the mail and are hostile: only a cleaned base name is ever used.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ALLOWED_TYPES", "MAX_ATTACHMENTS", "MAX_ATTACHMENT_BYTES", "AnswerFile", "MailFile", "RefusedFile",
           "check_file", "safe_name", "write_private"]

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
"""Per file (Telegram takes 50 MB from a bot; an expert's note or model document is far smaller)."""
MAX_ATTACHMENTS = 5
"""Per reply; more are refused (a reply with dozens of files is not an answer to one question)."""
MAX_NAME_CHARS = 120

ALLOWED_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".txt": "text/plain",
}
"""Extension -> the content type the file is served with, whatever the mail said."""

_OOXML_MAIN = {".docx": "word/", ".xlsx": "xl/", ".pptx": "ppt/"}
_MAX_ZIP_ENTRIES = 10_000
_RESERVED = re.compile(r"(?:con|prn|aux|nul|com\d|lpt\d)(?:\..*)?", re.IGNORECASE)
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f<>:\"/\\|?*]+")


@dataclass(frozen=True)
class MailFile:
    """An attachment taken from a mail that passed the checks."""

    name: str
    content_type: str
    data: bytes = b""


@dataclass(frozen=True)
class RefusedFile:
    """An attachment that is not passed on, and why (English, for the maintainer)."""

    name: str
    reason: str


@dataclass(frozen=True)
class AnswerFile:
    """A stored attachment of a ticket's answer, as the channels deliver it."""

    id: int
    ticket: int
    name: str
    content_type: str
    size: int
    path: Path
    sha256: str = ""

    @property
    def ref(self) -> str:
        """The handle a signed download link names: the id and the start of the digest, so a link can only ever
        give the file it was made for."""
        return f"attachment:{self.id}:{self.sha256[:16]}"


def safe_name(name: str) -> str:
    """A file name that is safe on every disk and in every header: base name only, no control or reserved
    characters, at most MAX_NAME_CHARS with the extension kept; "bijlage" when nothing usable is left."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]
    # Control and format characters (C1 controls, bidi overrides that make "exe.pdf" read "fdp.exe") go too.
    name = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in name)
    name = " ".join(_UNSAFE_CHARS.sub(" ", name).split()).strip(" .")
    if not name:
        return "bijlage"
    stem, ext = os.path.splitext(name)
    if len(ext) > 10:
        stem, ext = name, ""
    stem = stem[: MAX_NAME_CHARS - len(ext)].rstrip(" .") or "bijlage"
    if _RESERVED.fullmatch(stem):
        stem = "_" + stem  # CON, PRN, NUL, COM1 ... cannot be saved under that name on Windows
    return stem + ext.lower()


def check_file(name: str, data: bytes) -> tuple[str | None, str]:
    """(content type, "") for a file the officer may get, or (None, reason) for one that is refused."""
    ext = os.path.splitext(name)[1].lower()
    content_type = ALLOWED_TYPES.get(ext)
    if content_type is None:
        return None, f"type {ext or '(no extension)'} is not on the allow-list"
    if len(data) > MAX_ATTACHMENT_BYTES:
        return None, f"larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB"
    if not data:
        return None, "empty file"
    if ext == ".pdf":
        ok = data[:1024].lstrip().startswith(b"%PDF-")
    elif ext == ".txt":
        ok = b"\x00" not in data[:65536]
        if ok:
            try:
                data[:65536].decode("utf-8")
            except UnicodeDecodeError as exc:
                ok = exc.start > 65530  # a character cut at the sample's end is fine
    else:
        problem = _package_problem(ext, data)
        if problem:
            return None, problem
        ok = True
    return (content_type, "") if ok else (None, f"content is not a {ext} file")


_ACTIVE_PARTS = re.compile(r"(?:^|/)(?:vbaproject\.bin|vbadata\.xml|activex/|embeddings/[^/]*\.bin$)"
                           r"|^(?:basic|scripts)/", re.IGNORECASE)
"""Parts that carry code: VBA projects, ActiveX controls and embedded OLE programs (OOXML); Basic, Python,
BeanShell or JavaScript macros (ODF)."""
_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]{0,4000}>", re.IGNORECASE)
_MAX_RELS_BYTES = 65_536


def _package_problem(ext: str, data: bytes) -> str | None:
    """Why a ZIP-based office file is refused, or None. The central directory is read; of the entries only two
    tiny ones are, each bounded in what it may unpack to: ODF's stored "mimetype" and Word's settings relations."""
    if not data.startswith(b"PK\x03\x04"):
        return f"content is not a {ext} file"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
            if len(infos) > _MAX_ZIP_ENTRIES:
                return "too many entries in the package"
            names = {info.filename for info in infos}
            if any(_ACTIVE_PARTS.search(n) for n in names):
                return "contains macros or embedded programs"
            if ext in _OOXML_MAIN:
                if "[Content_Types].xml" not in names or not any(n.startswith(_OOXML_MAIN[ext]) for n in names):
                    return f"content is not a {ext} file"
                rels = next((i for i in infos if i.filename == "word/_rels/settings.xml.rels"), None)
                if rels is not None:
                    with package.open(rels) as fh:  # read at most this much, whatever the entry claims
                        relations = _RELATIONSHIP.findall(fh.read(_MAX_RELS_BYTES))
                    if any(b"attachedtemplate" in r.lower() and b"external" in r.lower() for r in relations):
                        return "refers to an external template (macros could be loaded from it)"
                return None
            mimetype = package.getinfo("mimetype") if "mimetype" in names else None
            # ODF stores "mimetype" uncompressed; anything else is no ODF file (and could be a decompression bomb).
            if (mimetype is None or mimetype.compress_type != zipfile.ZIP_STORED or mimetype.file_size > 200
                    or mimetype.compress_size != mimetype.file_size):
                return f"content is not a {ext} file"
            if package.read(mimetype).decode("ascii", "replace").strip() != ALLOWED_TYPES[ext]:
                return f"content is not a {ext} file"
    except Exception:  # noqa: BLE001 - zipfile, zlib, bz2 and lzma raise many things on a hostile package
        return "damaged package"
    return None


def write_private(directory: Path, ticket: int, data: bytes) -> tuple[Path, str]:
    """Store a file under ``directory`` (0700) as ``<ticket>-<sha256>`` (0600); (path, sha256 hex)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # also a folder restored from a backup with other modes
    digest = hashlib.sha256(data).hexdigest()
    path = directory / f"{ticket}-{digest[:32]}"
    # A name of its own: two processes storing the same file for one ticket must not share a temporary file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{ticket}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp creates it 0600, exclusively
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, digest
