"""The Teams app package (`vraagbaak teams manifest`): manifest.json (schema 1.17) and two icons drawn in code."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.texts import TEAMS_COMMANDS

MANIFEST_VERSION = "1.17"
SCHEMA = f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
ACCENT = (0x1F, 0x5F, 0xA8)
COLOR_SIZE = 192
OUTLINE_SIZE = 32
SCOPES = ["personal", "team", "groupChat"]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_DOMAIN = re.compile(r"^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(:\d+)?$")


class ManifestError(ValueError):
    """An option does not fit the Teams manifest schema; the message says which."""


def build_manifest(*, app_id: str, website_url: str, privacy_url: str | None = None, terms_url: str | None = None,
                   developer: str = "Vraagbaak", domains: Iterable[str] = (), version: str = "1.0.0") -> dict[str, Any]:
    """manifest.json for a bot-only app in personal chats, teams and group chats."""
    if not _GUID.match(app_id or ""):
        raise ManifestError(f"the app id must be the Entra application (client) id, a GUID; got {app_id!r}")
    if not _VERSION.match(version):
        raise ManifestError(f"the version must look like 1.0.0, got {version!r}")
    urls = {"website": website_url, "privacy": privacy_url or website_url, "terms": terms_url or website_url}
    for what, url in urls.items():
        if not url.startswith("https://"):
            raise ManifestError(f"the {what} URL must start with https://, got {url!r}")
    valid_domains = sorted(set(domains))
    for domain in valid_domains:
        if not _DOMAIN.match(domain):
            raise ManifestError(f"a valid domain is a host name without scheme or path, got {domain!r}")
    if not 0 < len(developer) <= 32:
        raise ManifestError("the developer name must be 1 to 32 characters")
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id.lower(),
        "developer": {"name": developer, "websiteUrl": urls["website"], "privacyUrl": urls["privacy"],
                      "termsOfUseUrl": urls["terms"]},
        "name": {"short": "Vraagbaak", "full": "Vraagbaak: helpdesk innovatieve overheidsopdrachten"},
        "description": {
            "short": "Antwoorden met bronnen over innovatieve overheidsopdrachten",
            "full": ("Vraagbaak is de eerstelijnshelpdesk voor innovatieve overheidsopdrachten voor Vlaamse lokale "
                     "besturen: precommercieel aankopen (PCP), innovatiepartnerschap, concurrentiegerichte dialoog, "
                     "onderhandelingsprocedures, marktconsultatie en drempels. Elk antwoord citeert de wetgeving of "
                     "richtlijn waarop het steunt. Twijfel je, dan leg je je vraag met één klik voor aan de "
                     "expertenpool; hun antwoord komt in hetzelfde gesprek terug. Vraagbaak geeft geen juridisch "
                     "advies over een concreet geschil."),
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#%02X%02X%02X" % ACCENT,
        "bots": [{
            "botId": app_id.lower(),
            "scopes": SCOPES,
            "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [{"scopes": SCOPES,
                              "commands": [{"title": t, "description": d} for t, d in TEAMS_COMMANDS]}],
        }],
        "validDomains": valid_domains,
    }


def package_bytes(manifest: dict[str, Any]) -> bytes:
    """The zip Teams accepts: manifest.json and both icons at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        archive.writestr("color.png", color_icon())
        archive.writestr("outline.png", outline_icon())
    return buffer.getvalue()


def write_package(path: Path, manifest: dict[str, Any]) -> Path:
    """Write the app package to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(package_bytes(manifest))
    return path


# -- icons: a white "V" (Vraagbaak), anti-aliased, without an imaging library ----------------------------------


def color_icon() -> bytes:
    """192x192: the white V on the accent colour, full bleed."""
    def pixel(x: float, y: float) -> tuple[int, int, int, int]:
        cover = _v_coverage(x / COLOR_SIZE, y / COLOR_SIZE, width=0.11, pixel=1 / COLOR_SIZE)
        return tuple(round(c + (255 - c) * cover) for c in ACCENT) + (255,)  # type: ignore[return-value]

    return png(COLOR_SIZE, COLOR_SIZE, pixel)


def outline_icon() -> bytes:
    """32x32: the V in white on a transparent background (Teams tints it)."""
    def pixel(x: float, y: float) -> tuple[int, int, int, int]:
        return (255, 255, 255, round(255 * _v_coverage(x / OUTLINE_SIZE, y / OUTLINE_SIZE, width=0.13,
                                                      pixel=1 / OUTLINE_SIZE)))

    return png(OUTLINE_SIZE, OUTLINE_SIZE, pixel)


def _v_coverage(x: float, y: float, *, width: float, pixel: float) -> float:
    """How much of the pixel centred at (x, y) (unit square, pixels of size ``pixel``) the V covers, 0..1."""
    top_left, bottom, top_right = (0.25, 0.26), (0.5, 0.76), (0.75, 0.26)
    distance = min(_segment_distance((x, y), top_left, bottom), _segment_distance((x, y), bottom, top_right))
    return max(0.0, min(1.0, (width / 2 - distance) / pixel + 0.5))


def _segment_distance(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return ((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2) ** 0.5


def png(width: int, height: int, pixel: Callable[[float, float], tuple[int, int, int, int]]) -> bytes:
    """An RGBA PNG; ``pixel`` gets each pixel's centre in image coordinates."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows.extend(pixel(x + 0.5, y + 0.5))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))
