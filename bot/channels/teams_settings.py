"""Teams channel settings from ``MICROSOFT_APP_*`` and ``VRAAGBAAK_TEAMS_*``.

No SDK import: the settings decide whether the Teams adapter (and its SDK) is loaded at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError

SINGLE_TENANT = "SingleTenant"
MULTI_TENANT = "MultiTenant"
_APP_TYPES = {"singletenant": SINGLE_TENANT, "multitenant": MULTI_TENANT}
DEFAULT_HOST = "127.0.0.1"
"""As ``bot.server.ServerSettings``: where ``vraagbaak serve`` listens when ``VRAAGBAAK_HOST`` is not set."""


def is_loopback(host: str | None) -> bool:
    """Whether a host name or address is this machine only (localhost, 127.0.0.0/8, ::1)."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or address).is_loopback


def check_local_mode(host: str) -> None:
    """Refuse the unauthenticated mode on a server other machines can reach."""
    if not is_loopback(host):
        raise ConfigError(f"VRAAGBAAK_TEAMS_AUTH=off (no authentication) only works with VRAAGBAAK_HOST on this "
                          f"machine (127.0.0.1, ::1 or localhost), got VRAAGBAAK_HOST={host!r}: set "
                          f"VRAAGBAAK_HOST=127.0.0.1, or turn authentication on")


@dataclass(frozen=True)
class TeamsSettings:
    """The bot's Entra app registration, or the explicit unauthenticated local mode (``VRAAGBAAK_TEAMS_AUTH=off``)."""

    app_id: str
    app_password: str | None = field(default=None, repr=False)
    certificate_thumbprint: str | None = None
    certificate_key_file: Path | None = None
    app_type: str = SINGLE_TENANT
    tenant_id: str | None = None
    auth: bool = True
    allowed_tenants: frozenset[str] = frozenset()
    """Lower-case tenant ids whose activities are answered; empty means any tenant (only in local mode)."""
    host: str = DEFAULT_HOST
    """``VRAAGBAAK_HOST``, where the server listens; the local mode refuses anything but loopback."""
    rate_per_minute: int = 20
    """Messages and button presses one officer may send in any minute (``VRAAGBAAK_TEAMS_RATE_PER_MINUTE``, 0 = off)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "TeamsSettings | None":
        """Read the environment; None when Teams is not configured (no ``MICROSOFT_APP_ID`` and auth not off)."""
        mode = (env.get("VRAAGBAAK_TEAMS_AUTH") or "on").strip().lower()
        if mode not in ("on", "off"):
            raise ConfigError(f"VRAAGBAAK_TEAMS_AUTH must be on or off, got {mode!r}")
        app_id = (env.get("MICROSOFT_APP_ID") or "").strip()
        allowed = frozenset(t.strip().lower() for t in (env.get("VRAAGBAAK_TEAMS_ALLOWED_TENANTS") or "").split(",")
                            if t.strip())
        host = (env.get("VRAAGBAAK_HOST") or DEFAULT_HOST).strip()
        rate = (env.get("VRAAGBAAK_TEAMS_RATE_PER_MINUTE") or "20").strip()
        if not rate.isdigit():
            raise ConfigError(f"VRAAGBAAK_TEAMS_RATE_PER_MINUTE must be a whole number (0 = off), got {rate!r}")
        if mode == "off":
            # Local testing only (Bot Framework Emulator, the tests' fake connector): no token in, no token out,
            # so nobody but this machine may reach the endpoint.
            check_local_mode(host)
            return cls(app_id=app_id, auth=False, allowed_tenants=allowed, host=host, rate_per_minute=int(rate))
        if not app_id:
            return None
        raw_type = (env.get("MICROSOFT_APP_TYPE") or SINGLE_TENANT).strip()
        app_type = _APP_TYPES.get(raw_type.lower())
        if app_type is None:
            raise ConfigError(f"MICROSOFT_APP_TYPE must be SingleTenant or MultiTenant, got {raw_type!r}")
        tenant_id = (env.get("MICROSOFT_APP_TENANTID") or "").strip() or None
        if app_type == SINGLE_TENANT and not tenant_id:
            raise ConfigError("MICROSOFT_APP_TENANTID is required for a SingleTenant bot (the Entra directory id)")
        password = env.get("MICROSOFT_APP_PASSWORD") or None
        thumbprint = (env.get("MICROSOFT_APP_CERTIFICATE_THUMBPRINT") or "").strip() or None
        key = (env.get("MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY") or "").strip() or None
        key_file = None
        if password and (thumbprint or key):
            raise ConfigError("set MICROSOFT_APP_PASSWORD or MICROSOFT_APP_CERTIFICATE_*, not both")
        if not password:
            if not thumbprint and not key:
                raise ConfigError("MICROSOFT_APP_PASSWORD is required when MICROSOFT_APP_ID is set (or use a "
                                  "certificate: MICROSOFT_APP_CERTIFICATE_THUMBPRINT and "
                                  "MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY)")
            if not thumbprint:
                raise ConfigError("MICROSOFT_APP_CERTIFICATE_THUMBPRINT is required with "
                                  "MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY")
            if not key:
                raise ConfigError("MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY (path to the PEM private key) is required "
                                  "with MICROSOFT_APP_CERTIFICATE_THUMBPRINT")
            key_file = Path(key).expanduser()
            if not key_file.is_file():
                raise ConfigError(f"MICROSOFT_APP_CERTIFICATE_PRIVATE_KEY: no file at {key_file}")
        if not allowed:
            # The bot serves its own organisation by default. A multi-tenant app registration lets any tenant's
            # Teams reach the endpoint with a valid token, so without an explicit list only the home tenant is
            # answered, and with no home tenant either the list must be given.
            if not tenant_id:
                raise ConfigError("VRAAGBAAK_TEAMS_ALLOWED_TENANTS is required for a MultiTenant bot without "
                                  "MICROSOFT_APP_TENANTID: list the tenant ids (comma-separated) whose officers may "
                                  "use Vraagbaak")
            allowed = frozenset({tenant_id.lower()})
        return cls(app_id=app_id, app_password=password, certificate_thumbprint=thumbprint,
                   certificate_key_file=key_file, app_type=app_type, tenant_id=tenant_id, auth=True,
                   allowed_tenants=allowed, host=host, rate_per_minute=int(rate))

    def tenant_allowed(self, tenant_id: str | None) -> bool:
        """Whether an activity from this tenant may be answered (any tenant only in local mode without a list)."""
        if not self.allowed_tenants:
            return True
        return bool(tenant_id) and tenant_id.lower() in self.allowed_tenants
