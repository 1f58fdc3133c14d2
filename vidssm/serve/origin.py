"""Who may use the local model server: `Host` and `Origin` checks against cross-site WebSocket hijacking.

Browsers apply no same-origin rule to WebSockets: any web page the user visits can open
`ws://127.0.0.1:PORT/ws`, and the browser sends that page's `Origin`. A DNS-rebinding page goes further: its own
name resolves to 127.0.0.1, so its `Origin` matches its `Host`. The server therefore

- accepts a `Host` only when it names the bound address: the bound IP itself (any IP literal when bound to all
  interfaces), `localhost` when bound to loopback or all interfaces, or a host name the user allowed. A rebound
  DNS name is none of these (OWASP, "DNS rebinding"; the same rule as Jupyter's `allow_remote_access`);
- accepts a WebSocket whose `Origin` is the page it served (same scheme-less host and port as `Host`) or one of
  the origins the user allowed (`--allow-origin`). A request without `Origin` is not from a browser page and is
  accepted (a local program can reach the model anyway).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)
ANY_ADDRESS = ("0.0.0.0", "::", "")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def split_host(host: str) -> tuple[str, int | None]:
    """`host[:port]` (IPv6 in brackets) → lower-case host name without brackets, and the port or None.

    Raises:
        ValueError: Not a host (empty, bad port).
    """
    parts = urlsplit("//" + host.strip())
    if not parts.hostname:
        raise ValueError(f"not a host: {host!r}")
    return parts.hostname.lower(), parts.port


def _origin_key(origin: str) -> str:
    """`scheme://host[:port]`, lower-case, default ports dropped, for comparing origins."""
    parts = urlsplit(origin.strip())
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an origin: {origin!r}")
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme.lower())
    port = parts.port
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme.lower()}://{host.lower()}" + ("" if port in (None, default) else f":{port}")


@dataclass(frozen=True)
class AccessPolicy:
    """Which `Host` and `Origin` headers the server accepts (see the module docstring).

    Args:
        bind_host: The address the server is bound to (`127.0.0.1`, `::1`, `0.0.0.0`, a LAN IP or a name).
        allow_origins: Extra page origins allowed to open the WebSocket, such as `https://my.app:8443`.
        allow_hosts: Extra host names allowed in `Host` (a name under which the server is reached on purpose).

    Raises:
        ValueError: An allowed origin that is not `scheme://host[:port]`.
    """

    bind_host: str = "127.0.0.1"
    allow_origins: tuple[str, ...] = field(default_factory=tuple)
    allow_hosts: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow_origins", tuple(_origin_key(o) for o in self.allow_origins))
        object.__setattr__(self, "allow_hosts", tuple(h.strip("[]").lower() for h in self.allow_hosts))

    @classmethod
    def create(
        cls, bind_host: str, allow_origins: Iterable[str] = (), allow_hosts: Iterable[str] = ()
    ) -> AccessPolicy:
        """Builds a policy from CLI-style lists."""
        return cls(bind_host, tuple(allow_origins), tuple(allow_hosts))

    def host_error(self, host: str | None) -> str | None:
        """Why a `Host` header is refused, or None when it is accepted."""
        if not host:
            return "request without a Host header"
        try:
            name, _ = split_host(host)
        except ValueError:
            return f"bad Host header {host[:60]!r}"
        if name in self.allow_hosts:
            return None
        bind = self.bind_host.strip("[]").lower()
        bind_ip = _ip(bind)
        any_address = bind in ANY_ADDRESS
        loopback = bind in LOOPBACK_NAMES or (bind_ip is not None and bind_ip.is_loopback)
        ip = _ip(name)
        if name in LOOPBACK_NAMES and (loopback or any_address):
            return None
        if ip is not None and (any_address or ip == bind_ip or (loopback and ip.is_loopback)):
            return None
        if bind_ip is None and name == bind:
            return None  # bound by name on purpose (`--host myhost.lan`)
        return f"Host {name!r} is not this server's address (bound to {self.bind_host}); add it with --allow-host"

    def origin_error(self, origin: str | None, host: str | None, secure: bool = False) -> str | None:
        """Why a WebSocket `Origin` is refused (given the request's `Host`), or None when it is accepted.

        Args:
            origin: The `Origin` header (None: not sent, not a browser page).
            host: The `Host` header of the same request.
            secure: Whether the request came over TLS (the page's scheme is then https).
        """
        if origin is None:
            return None
        try:
            key = _origin_key(origin)
        except ValueError:
            return f"origin {origin[:60]!r} is not allowed"
        if key in self.allow_origins:
            return None
        if host:
            own = _origin_key(f"{'https' if secure else 'http'}://{host.strip()}")
            if key == own:
                return None
        return f"origin {key[:60]} is not allowed; start vidssm serve with --allow-origin {key[:60]}"
