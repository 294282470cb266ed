"""SSRF-safe fetching of `type: url` images (contract decision 11).

Every hop (the first URL and each redirect) is checked: scheme, FQDN, allow/deny lists, and
that ALL the addresses its name resolves to are global. The connection then goes to the very
address that was checked, so DNS rebinding cannot swap it between check and connect:

* the request URL's host is replaced by the checked IP (httpcore connects to that literal and
  never resolves anything itself);
* the original name travels in the `Host` header;
* for https the name is passed as httpcore's `sni_hostname` request extension, which becomes
  `server_hostname` of the TLS handshake: it is sent as SNI AND is the name the certificate is
  verified against (the SSL context keeps `check_hostname=True`). Verification therefore still
  proves we talk to the named host, not merely to "some certificate for that IP".

Keep-alive is off: httpcore pools connections by (scheme, IP, port), so a kept TLS connection
verified for `a.com` could otherwise carry a request for `b.com` that resolved to the same IP.
Cookies are never stored (the client is shared between users) and proxy env vars are ignored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import httpx

from gateway.errors import ImageLoadError

log = logging.getLogger("gateway.images.fetch")

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Upstream's public messages (roboflow/inference image_utils), kept verbatim.
URL_DISABLED = "Providing images via URL is not supported in this configuration of `inference`."
NON_HTTPS = "Providing images via non https:// URL is not supported in this configuration of `inference`."
NO_FQDN = "Providing images via URL without FQDN is not supported in this configuration of `inference`."
INVALID_URL = "Provided image URL is invalid."
NOT_ALLOWLISTED = "It is not allowed to reach image URL - prohibited by whitelisted destinations."
DENYLISTED = "It is not allowed to reach image URL - prohibited by blacklisted destinations."
FETCH_FAILED = "Data pointed by URL could not be decoded into image."
NOT_IMAGE = "Data is not image."
# Ours (upstream has no such checks).
FORBIDDEN = "URL points to a network destination that is not allowed."
TOO_MANY_REDIRECTS = "Too many redirects while fetching the image URL."
TOO_LARGE = "Image pointed by URL is larger than the allowed {} bytes."

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Not globally reachable, but `is_global` says so (or did in some Python releases): checked by hand.
_V4_SPECIAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class UrlPolicy:
    """URL rules, built by the gateway from its settings; the defaults are the safe ones."""

    allow_url_input: bool = True
    allow_non_https: bool = False
    allow_without_fqdn: bool = False
    allow_non_global: bool = False
    allowlist: tuple[str, ...] = ()
    denylist: tuple[str, ...] = ()
    connect_timeout_s: float = 3.0
    total_timeout_s: float = 10.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 3
    # Escape hatch for tests and ops (e.g. an internal image store): addresses inside these
    # networks pass the non-global check. Leave empty unless that is deliberate.
    extra_allowed_networks: tuple[str, ...] = ()


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` denotes if it is an IP literal in any form, else None.

    `inet_aton` accepts the legacy forms resolvers also accept (2130706433, 0177.0.0.1, 0x7f.1,
    127.1), so a host it accepts is a literal and must not be mistaken for a name.
    """
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def is_fqdn(host: str) -> bool:
    """At least two valid labels and an alphabetic (or IDNA) last label; no suffix list needed."""
    labels = host.split(".")
    return (
        0 < len(host) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and bool(_TLD.match(labels[-1]))
    )


def is_public_address(addr: IPAddress) -> bool:
    """True only for globally routable unicast; embedded IPv4 (mapped, NAT64, 6to4, Teredo) is checked."""
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return is_public_address(addr.ipv4_mapped)
        if addr in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if addr in _V4_COMPATIBLE:  # ::, ::1 and deprecated ::a.b.c.d: never a real target
            return False
        embedded = [addr.sixtofour, *(addr.teredo or ())]
        if any(e is not None and not is_public_address(e) for e in embedded):
            return False
        if addr.is_site_local:
            return False
    elif any(addr in net for net in _V4_SPECIAL):
        return False
    flags = (addr.is_private, addr.is_loopback, addr.is_link_local, addr.is_multicast,
             addr.is_reserved, addr.is_unspecified)
    return addr.is_global and not any(flags)


def _host_in(host: str, entries: tuple[str, ...]) -> bool:
    return any(host == entry or host.endswith("." + entry) for entry in entries)


def _normalise_hosts(hosts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(h for h in (raw.strip().strip(".").lower() for raw in hosts) if h)


async def system_resolver(host: str, port: int) -> list[str]:
    """Default resolver: the OS resolver in the default executor, answers in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class ImageFetcher:
    """Fetches image bytes from client URLs under a `UrlPolicy`; one per app (owned by the lifespan)."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._policy = policy
        self._resolve_host = resolver or system_resolver
        self._allowlist = _normalise_hosts(policy.allowlist)
        self._denylist = _normalise_hosts(policy.denylist)
        self._extra = tuple(ipaddress.ip_network(n, strict=False) for n in policy.extra_allowed_networks)
        self._client = httpx.AsyncClient(
            transport=transport
            or httpx.AsyncHTTPTransport(retries=0, limits=httpx.Limits(max_keepalive_connections=0)),
            timeout=httpx.Timeout(policy.total_timeout_s, connect=policy.connect_timeout_s),
            follow_redirects=False,
            trust_env=False,  # no proxies from env: they would defeat pinning
            cookies=httpx.Cookies(CookieJar(DefaultCookiePolicy(allowed_domains=[]))),
            headers={"Accept": "image/*", "Accept-Encoding": "identity", "User-Agent": "clip-gateway"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> bytes:
        """The body of the image at `url`, or ImageLoadError; logs host and reason, never the URL."""
        hosts: list[str] = []
        try:
            if not self._policy.allow_url_input:
                raise ImageLoadError(URL_DISABLED, reason="url_disabled")
            try:
                async with asyncio.timeout(self._policy.total_timeout_s):
                    return await self._fetch(url, hosts)
            except (TimeoutError, httpx.ConnectTimeout) as exc:
                reason = "connect" if isinstance(exc, httpx.ConnectTimeout) else "timeout"
                raise ImageLoadError(FETCH_FAILED, reason=reason) from None
            except httpx.TimeoutException:
                raise ImageLoadError(FETCH_FAILED, reason="timeout") from None
            except (httpx.HTTPError, httpx.InvalidURL, OSError):
                raise ImageLoadError(FETCH_FAILED, reason="connect") from None
        except ImageLoadError as exc:
            log.info("url image refused host=%s reason=%s", hosts[-1] if hosts else "-", exc.reason)
            raise

    async def _fetch(self, url: str, hosts: list[str]) -> bytes:
        current = self._parse(url)
        for _ in range(self._policy.max_redirects + 1):
            response = await self._send(current, hosts)
            try:
                location = response.headers.get("location")
                if response.status_code in _REDIRECT_CODES and location:
                    current = self._parse(urljoin(str(current), location))
                    continue
                return await self._read(response)
            finally:
                await response.aclose()
        raise ImageLoadError(TOO_MANY_REDIRECTS, reason="redirects")

    def _parse(self, url: str) -> httpx.URL:
        """Parse with httpx (the same parser that builds the request) and check the scheme."""
        try:
            parsed: httpx.URL | None = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
        if parsed is not None:
            self._check_scheme(parsed.scheme)
            return parsed
        try:  # e.g. `0177.0.0.1`, which httpx rejects: still answer what upstream would
            parts = urlsplit(url)
            scheme, literal = parts.scheme, ip_literal(parts.hostname or "") is not None
        except (TypeError, ValueError, AttributeError):
            scheme, literal = "", False
        self._check_scheme(scheme)
        if literal and not self._policy.allow_without_fqdn:
            raise ImageLoadError(NO_FQDN, reason="fqdn")
        raise ImageLoadError(INVALID_URL, reason="fqdn")

    def _check_scheme(self, scheme: str) -> None:
        if scheme.lower() != "https" and not (self._policy.allow_non_https and scheme.lower() == "http"):
            raise ImageLoadError(NON_HTTPS, reason="scheme")

    async def _send(self, url: httpx.URL, hosts: list[str]) -> httpx.Response:
        """Check one hop, then connect to the checked address (see the module docstring)."""
        host = url.raw_host.decode("ascii").lower().rstrip(".")
        hosts.append(host)
        literal = ip_literal(host)
        if not host or ((literal is not None or not is_fqdn(host)) and not self._policy.allow_without_fqdn):
            raise ImageLoadError(NO_FQDN, reason="fqdn")
        if self._allowlist and not _host_in(host, self._allowlist):
            raise ImageLoadError(NOT_ALLOWLISTED, reason="allowlist")
        if _host_in(host, self._denylist):
            raise ImageLoadError(DENYLISTED, reason="denylist")
        addresses = [literal] if literal is not None else await self._resolve(host, url.port or (443 if url.scheme == "https" else 80))
        if not self._policy.allow_non_global and not all(map(self._address_allowed, addresses)):
            raise ImageLoadError(FORBIDDEN, reason="forbidden_address")
        pinned = addresses[0]
        if isinstance(pinned, ipaddress.IPv6Address) and pinned.scope_id:
            pinned = ipaddress.IPv6Address(str(pinned).split("%")[0])
        extensions = {"sni_hostname": host} if url.scheme == "https" and literal is None else {}
        request = self._client.build_request(
            "GET", url.copy_with(host=str(pinned)), headers={"Host": url.netloc.decode("ascii")},
            extensions=extensions,
        )
        return await self._client.send(request, stream=True)

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await self._resolve_host(host, port)
            addresses = [ipaddress.ip_address(a) for a in answers]
        except (OSError, UnicodeError, ValueError):
            raise ImageLoadError(FETCH_FAILED, reason="dns") from None
        if not addresses:
            raise ImageLoadError(FETCH_FAILED, reason="dns")
        return addresses

    def _address_allowed(self, addr: IPAddress) -> bool:
        return is_public_address(addr) or any(addr.version == n.version and addr in n for n in self._extra)

    async def _read(self, response: httpx.Response) -> bytes:
        """Body of a 2xx image response, aborting as soon as it passes the byte cap."""
        if not 200 <= response.status_code < 300:
            raise ImageLoadError(FETCH_FAILED, reason="http_status")
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type != "application/octet-stream" and not media_type.startswith("image/"):
            raise ImageLoadError(NOT_IMAGE, reason="content_type")
        cap = self._policy.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise ImageLoadError(TOO_LARGE.format(cap), reason="too_large")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > cap:
                raise ImageLoadError(TOO_LARGE.format(cap), reason="too_large")
        return bytes(body)
