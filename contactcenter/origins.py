"""Which web origins may open the agent socket: the service's own and `CC_ALLOWED_ORIGINS`, compared as
normalised origins (scheme, host and port), never against the request's own `Host` header, which the page
that opened the socket chooses."""

from __future__ import annotations

from urllib.parse import urlsplit

from contactcenter.settings import Settings

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def origin_of(url: str) -> str | None:
    """`scheme://host:port` of `url`, lower-cased and with the port always written; None when it has none
    (`null`, a relative or non-web URL, a port out of range)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS[scheme]}"


def web_origins(settings: Settings) -> frozenset[str]:
    """The service's own origin — `CC_PUBLIC_URL`'s, or the address it listens on, with its loopback twins
    for a loopback host — and the allow-list."""
    if settings.public_url:
        own = [settings.public_url]
    elif settings.http_host in _LOOPBACK:
        own = [f"http://{'[::1]' if host == '::1' else host}:{settings.http_port}" for host in _LOOPBACK]
    else:
        own = [f"http://{settings.http_host}:{settings.http_port}"]
    return frozenset(origin for origin in map(origin_of, [*own, *settings.allowed_origins]) if origin)
