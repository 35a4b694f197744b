"""Bytes to text and text to tree for HTML pages: charset detection, binary refusal, lxml parsing."""

from __future__ import annotations

import codecs
import re

import lxml.html
from lxml import etree

from corpus.errors import SourceReadError
from corpus.loaders.text import decode_bytes

_MAGIC = {
    b"%PDF": "a PDF file",
    b"PK\x03\x04": "a ZIP archive (for example .docx or .xlsx)",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "gzip-compressed data",
    b"\xd0\xcf\x11\xe0": "an old Microsoft Office document",
}
# Pages that declare Latin-1 are decoded as cp1252: a superset that also covers € and curly quotes.
_LATIN1_NAMES = {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "windows-1252", "cp1252"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9_.-]+)""")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# C0/C1 control characters never occur in real HTML text; many of them mean the bytes are not text at all.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_BINARY_RATIO = 0.005


def decode_page(data: bytes, name: str) -> str:
    """Decode page bytes: declared charset, else UTF-8, else cp1252; reject binary data."""
    if not data.strip():
        raise SourceReadError(f"{name}: empty file, there is no HTML to read")
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise SourceReadError(f"{name}: this is {what}, not an HTML page")
    text = decode_bytes(data, name=name, what="an HTML page",
                        eight_bit=lambda raw: _decode_8bit(raw.removeprefix(b"\xef\xbb\xbf")))
    sample = text[:65536]
    if len(_CONTROL.findall(sample)) > _BINARY_RATIO * len(sample):
        raise SourceReadError(f"{name}: looks like binary data (many control characters), not an HTML page")
    text = _CONTROL.sub(" ", text)
    if not text.strip():
        raise SourceReadError(f"{name}: empty file, there is no HTML to read")
    return text


def _decode_8bit(data: bytes) -> str:
    """Decode bytes without a BOM, trusting a declared Latin-1 charset over a UTF-8 guess."""
    head = data[:4096]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    declared = match.group(1).decode("ascii", "replace").lower() if match else None
    if declared in _LATIN1_NAMES:
        return _decode_cp1252(data)
    if declared:
        try:
            codec = codecs.lookup(declared).name
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration ("UNICODE-1-1-UTF-8" on old EUR-Lex pages): guess instead
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_cp1252(data)


def _decode_cp1252(data: bytes) -> str:
    """Decode as cp1252; latin-1 takes the five bytes cp1252 leaves undefined, so it never fails."""
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_page(text: str, name: str) -> lxml.html.HtmlElement:
    """Parse decoded HTML (or XHTML) into an lxml tree."""
    # lxml refuses str input that still carries an XML encoding declaration.
    text = _XML_DECLARATION.sub("", text, count=1)
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise SourceReadError(f"{name}: cannot parse the HTML ({exc})") from exc
