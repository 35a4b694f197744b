"""Small, real-format office files made in code for tests (PDF with pypdf, DOCX and ODT packages with zipfile), and
mails carrying them."""

from __future__ import annotations

import email
import email.policy
import io
import zipfile

from pypdf import PdfWriter

LOGO = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF_TYPE = "application/pdf"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def with_attachments(raw: bytes, *files: tuple[str, str, bytes], inline_logo: bool = False) -> bytes:
    """A mail with attachments added (name, content type, bytes) and optionally a signature logo shown inline."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name, content_type, data in files:
        maintype, subtype = content_type.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if inline_logo:
        msg.add_attachment(LOGO, maintype="image", subtype="png", filename="image001.png", disposition="inline",
                           cid="<logo@example.be>")
    return bytes(msg)


def pdf_file() -> bytes:
    """A one-page PDF."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_file(text: str = "Advies van de expert", *, macro: bool = False) -> bytes:
    """A minimal WordprocessingML package (Word opens it); ``macro`` adds a VBA project as a .docm would carry."""
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
            'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.'
            'main+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
        "word/document.xml": (
            '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>'),
    }
    if macro:
        parts["word/vbaProject.bin"] = "\x00" * 64
    return _zip(parts)


def odt_file(text: str = "Advies van de expert") -> bytes:
    """A minimal OpenDocument text package: "mimetype" first and stored, as ODF requires."""
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:'
               'opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:'
               f'body><office:text><text:p>{text}</text:p></office:text></office:body></office:document-content>')
    return _zip({"mimetype": "application/vnd.oasis.opendocument.text", "content.xml": content})


def _zip(parts: dict[str, str]) -> bytes:
    """The package with fixed timestamps, so the same parts always give the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 15, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            package.writestr(info, data)
    return out.getvalue()


def package(parts: dict[str, bytes | str], *, compress: dict[str, int] | None = None) -> bytes:
    """A ZIP package of these parts (for hostile variants), each deflated unless ``compress`` says otherwise."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 15, 0, 0, 0))
            info.compress_type = (compress or {}).get(name, zipfile.ZIP_DEFLATED)
            archive.writestr(info, data)
    return out.getvalue()
