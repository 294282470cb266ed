"""SSRF-safe fetching of `type: url` images (contract decision 11).

Every hop (first URL and each redirect) is checked: scheme, FQDN, allow/deny lists, and that ALL
addresses the name resolves to are global. Then the checked address is the one connected to (DNS
rebinding can't swap it): the URL's host is replaced by that IP, so httpcore resolves nothing; the
name goes in `Host`; for https it goes in the `sni_hostname` request extension, which httpcore uses
as the handshake's `server_hostname`: sent as SNI AND the name the certificate is verified against
(`check_hostname` stays on), so TLS still proves we reached the named host, not just that IP.

No keep-alive: httpcore pools by (scheme, IP, port), so a kept TLS connection verified for `a.com`
could carry a request for `b.com` resolving to the same IP. No cookies (the client is shared between
users), no proxies from the environment (they would defeat pinning).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urljoin, urlsplit

import httpx

from gateway.errors import ImageLoadError
from gateway.images.addresses import IPAddress, host_in, ip_literal, is_fqdn, is_public_address, normalise_hosts

log = logging.getLogger("gateway.images.fetch")

Resolver = Callable[[str, int], Awaitable[list[str]]]

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


async def system_resolver(host: str, port: int) -> list[str]:
    """Default resolver: the OS resolver in the default executor, answers in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def default_transport(verify: ssl.SSLContext | bool = True) -> httpx.AsyncHTTPTransport:
    """The production transport: no retries, and no keep-alive (see the module docstring)."""
    return httpx.AsyncHTTPTransport(verify=verify, retries=0, limits=httpx.Limits(max_keepalive_connections=0))


async def _take_location(response: httpx.Response) -> None:
    """Move `Location` where httpx won't look: even with follow_redirects=False it parses it
    (against the pinned IP URL) and raises on one it can't parse. We join and check it ourselves."""
    if "location" in response.headers:
        response.extensions["location"] = response.headers["location"]
        del response.headers["location"]


class ImageFetcher:
    """Fetches image bytes from client URLs under a `UrlPolicy`; one per app (owned by the lifespan).

    An injected `transport` replaces `default_transport()`; keep its no-keep-alive setting for https.
    """

    def __init__(
        self, policy: UrlPolicy, *, resolver: Resolver | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._policy = policy
        self._resolve_host = resolver or system_resolver
        self._allowlist = normalise_hosts(policy.allowlist)
        self._denylist = normalise_hosts(policy.denylist)
        self._extra = tuple(ipaddress.ip_network(n, strict=False) for n in policy.extra_allowed_networks)
        self._client = httpx.AsyncClient(
            transport=transport or default_transport(),
            timeout=httpx.Timeout(policy.total_timeout_s, connect=policy.connect_timeout_s),
            follow_redirects=False,
            trust_env=False,  # no proxies from env: they would defeat pinning
            headers={"Accept": "image/*", "Accept-Encoding": "identity", "User-Agent": "clip-gateway"},
            event_hooks={"response": [_take_location]},
        )
        self._client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # store none

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
            except httpx.ConnectTimeout:
                raise ImageLoadError(FETCH_FAILED, reason="connect") from None
            except (TimeoutError, httpx.TimeoutException):  # the total deadline, or a read/write one
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
                location = response.extensions.get("location")
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
        raise ImageLoadError(NO_FQDN if literal and not self._policy.allow_without_fqdn else INVALID_URL, reason="fqdn")

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
        if self._allowlist and not host_in(host, self._allowlist):
            raise ImageLoadError(NOT_ALLOWLISTED, reason="allowlist")
        if host_in(host, self._denylist):
            raise ImageLoadError(DENYLISTED, reason="denylist")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = [literal] if literal is not None else await self._resolve(host, port)
        if not self._policy.allow_non_global and not all(map(self._address_allowed, addresses)):
            raise ImageLoadError(FORBIDDEN, reason="forbidden_address")
        pinned = addresses[0]
        if isinstance(pinned, ipaddress.IPv6Address) and pinned.scope_id:
            pinned = ipaddress.IPv6Address(str(pinned).split("%")[0])
        extensions = {"sni_hostname": host} if url.scheme == "https" and literal is None else {}
        request = self._client.build_request(
            "GET",
            url.copy_with(host=str(pinned)),
            headers={"Host": url.netloc.decode("ascii")},
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
        if response.headers.get("content-encoding", "identity").strip().lower() != "identity":
            # We asked for identity; decoding gzip/br here would defeat the cap (one chunk can inflate 1000x).
            raise ImageLoadError(NOT_IMAGE, reason="content_type")
        body = bytearray()
        async for chunk in response.aiter_bytes():  # identity only, so nothing inflates
            body += chunk
            if len(body) > cap:
                raise ImageLoadError(TOO_LARGE.format(cap), reason="too_large")
        return bytes(body)
