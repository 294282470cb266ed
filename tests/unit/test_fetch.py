"""SSRF-safe URL fetching: every forbidden target is refused before any connection is made,
the checked address is the one connected to, and size/time/redirect limits hold.

Uses a fake resolver (no DNS) and local servers on 127.0.0.1 that record every connection.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.servers import RecordingServer, serve_in_thread

from gateway.errors import ImageLoadError
from gateway.images.addresses import is_public_address
from gateway.images.fetch import ImageFetcher, UrlPolicy, default_transport

pytestmark = pytest.mark.timeout(10)

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
CAP = 1000


class Recorder(RecordingServer):
    """A test server that records every accepted connection and every request."""

    def __init__(self, handler: type[BaseHTTPRequestHandler] | None = None) -> None:
        super().__init__(handler or Handler)
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.sni: list[str | None] = []

    def reset(self) -> None:
        super().reset()
        self.requests.clear()
        self.sni.clear()


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args: object) -> None:
        pass

    def _head(self, status: int, ctype: str | None = "image/png", length: int | None = None, **extra: str) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in extra.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        try:
            if path == "/image.png":
                self._head(200, length=len(IMAGE))
                self.wfile.write(IMAGE)
            elif path in ("/octet", "/notype", "/charset"):
                ctype = {"/octet": "application/octet-stream", "/notype": None, "/charset": "image/png; q=1"}[path]
                self._head(200, ctype=ctype, length=len(IMAGE))
                self.wfile.write(IMAGE)
            elif path == "/html":
                self._head(200, ctype="text/html", length=6)
                self.wfile.write(b"<html>")
            elif path == "/redirect":
                self._head(int(query.get("code", ["302"])[0]), ctype=None, length=0, Location=query["to"][0])
            elif path.startswith("/chain/"):
                left = int(path.rsplit("/", 1)[1])
                if left:
                    self._head(302, ctype=None, length=0, Location=f"/chain/{left - 1}")
                else:
                    self._head(200, length=len(IMAGE))
                    self.wfile.write(IMAGE)
            elif path.startswith("/status/"):
                self._head(int(path.rsplit("/", 1)[1]), length=len(IMAGE))
                self.wfile.write(IMAGE)
            elif path == "/big-nolen":  # HTTP/1.0 body delimited by close
                self._head(200)
                for _ in range(100):
                    self.wfile.write(b"x" * CAP)
            elif path == "/big-lying":
                self._head(200, length=10**9)
                self.wfile.write(b"x" * 10)
            elif path == "/slow":
                self._head(200, length=100)
                for _ in range(50):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            else:
                self._head(404, length=0)
        except OSError:  # the client hung up (cap/timeout tests)
            pass


class KeepAliveHandler(Handler):
    protocol_version = "HTTP/1.1"


def _serve(server: Recorder) -> Iterator[Recorder]:
    yield from serve_in_thread(server)


@pytest.fixture(scope="module")
def _server() -> Iterator[Recorder]:
    yield from _serve(Recorder())


@pytest.fixture
def server(_server: Recorder) -> Recorder:
    _server.reset()
    return _server


@pytest.fixture
def port(server: Recorder) -> int:
    return server.server_address[1]


class FakeResolver:
    """hostname -> answers; a list of lists answers successive calls (DNS rebinding)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        if answer and isinstance(answer[0], list):
            return list(answer[min(self.calls.count(host), len(answer)) - 1])  # type: ignore[arg-type]
        return list(answer)  # type: ignore[arg-type]


# Plain-http policy where only 127.0.0.1 is let through the non-global check (the escape hatch).
LOCAL = UrlPolicy(
    allow_non_https=True,
    extra_allowed_networks=("127.0.0.1/32",),
    connect_timeout_s=1.0,
    total_timeout_s=2.0,
    max_bytes=CAP * 10,
)


async def fetch(
    policy: UrlPolicy, url: str, resolver: FakeResolver | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> bytes:
    fetcher = ImageFetcher(policy, resolver=resolver or FakeResolver({}), transport=transport)
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def refused(
    policy: UrlPolicy, url: str, resolver: FakeResolver | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        await fetch(policy, url, resolver, transport)
    return info.value


FORBIDDEN = [
    "127.0.0.1",
    "127.0.0.53",
    "127.255.255.254",
    "::1",
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.254",
    "0.0.0.0",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "224.0.0.1",
    "224.0.1.1",
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "198.18.0.1",
    "2002:7f00:1::",
    "2002:a00:1::",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("address", FORBIDDEN)
async def test_name_resolving_to_forbidden_address_is_refused_without_connecting(
    server: Recorder, port: int, address: str
) -> None:
    policy = UrlPolicy(allow_non_https=True)
    resolver = FakeResolver({"images.example.com": [address]})
    error = await refused(policy, f"http://images.example.com:{port}/image.png", resolver)
    assert error.reason == "forbidden_address"
    assert resolver.calls == ["images.example.com"]
    assert server.connections == []


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]
)
def test_public_addresses_pass(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.asyncio
@pytest.mark.parametrize("answers", [["93.184.216.34", "10.0.0.5"], ["127.0.0.1", "93.184.216.34"]])
async def test_any_forbidden_answer_refuses(server: Recorder, port: int, answers: list[str]) -> None:
    resolver = FakeResolver({"mixed.example.com": answers})
    error = await refused(UrlPolicy(allow_non_https=True), f"http://mixed.example.com:{port}/image.png", resolver)
    assert error.reason == "forbidden_address"
    assert server.connections == []


IP_LITERALS = [
    "127.0.0.1:{p}",
    "2130706433:{p}",
    "0177.0.0.1:{p}",
    "0x7f.0.0.1:{p}",
    "0x7f000001:{p}",
    "127.1:{p}",
    "[::1]:{p}",
    "[::ffff:127.0.0.1]:{p}",
    "localhost:{p}",
    "LOCALHOST.:{p}",
    "metadata",
]


@pytest.mark.asyncio
@pytest.mark.parametrize("netloc", IP_LITERALS)
async def test_ip_literals_and_single_labels_need_fqdn(server: Recorder, port: int, netloc: str) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    error = await refused(UrlPolicy(allow_non_https=True), f"http://{netloc.format(p=port)}/image.png", resolver)
    assert error.reason == "fqdn"
    assert "URL without FQDN" in error.message
    assert resolver.calls == [] and server.connections == []


@pytest.mark.asyncio
@pytest.mark.parametrize("netloc", IP_LITERALS)
async def test_literals_allowed_by_fqdn_flag_still_hit_the_address_check(
    server: Recorder, port: int, netloc: str
) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"], "metadata": ["169.254.169.254"]})
    policy = UrlPolicy(allow_non_https=True, allow_without_fqdn=True)
    error = await refused(policy, f"http://{netloc.format(p=port)}/image.png", resolver)
    assert error.reason in ("forbidden_address", "fqdn")  # "fqdn": invalid for httpx (octal)
    assert server.connections == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "url",
    [
        "http://images.example.com/a.png",
        "ftp://images.example.com/a.png",
        "file:///etc/passwd",
        "images.example.com/a.png",
        "HTTP://0177.0.0.1/",
    ],
)
async def test_non_https_refused(url: str) -> None:
    error = await refused(UrlPolicy(), url)
    assert error.reason == "scheme"
    assert "non https:// URL" in error.message


@pytest.mark.asyncio
async def test_everything_allowed_fetches_local_image(server: Recorder, port: int) -> None:
    policy = UrlPolicy(allow_non_https=True, allow_without_fqdn=True, allow_non_global=True)
    assert await fetch(policy, f"http://127.0.0.1:{port}/image.png") == IMAGE
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    assert await fetch(policy, f"http://localhost:{port}/image.png?token=x", resolver) == IMAGE
    assert server.requests == [("/image.png", f"127.0.0.1:{port}"), ("/image.png?token=x", f"localhost:{port}")]


@pytest.mark.asyncio
async def test_dns_rebinding_uses_the_checked_address(server: Recorder, port: int) -> None:
    resolver = FakeResolver({"rebind.example.com": [["127.0.0.1"], ["169.254.169.254"]]})
    fetcher = ImageFetcher(LOCAL, resolver=resolver)
    try:
        # One lookup per hop; httpx never resolves the name itself (it would fail: no DNS here).
        assert await fetcher.fetch(f"http://rebind.example.com:{port}/image.png") == IMAGE
        assert resolver.calls == ["rebind.example.com"]
        assert server.requests == [("/image.png", f"rebind.example.com:{port}")]
        error = await refused_with(fetcher, f"http://rebind.example.com:{port}/image.png")
        assert error.reason == "forbidden_address"
        assert len(server.connections) == 1
    finally:
        await fetcher.aclose()


async def refused_with(fetcher: ImageFetcher, url: str) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        await fetcher.fetch(url)
    return info.value


@pytest.mark.asyncio
@pytest.mark.parametrize("answer", ["93.184.216.34", "2606:4700::1111"])
async def test_https_request_is_pinned_with_sni(answer: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, headers={"Content-Type": "image/png"}, content=IMAGE)

    resolver = FakeResolver({"images.example.com": [answer]})
    got = await fetch(UrlPolicy(), "https://images.example.com/cat.png", resolver, httpx.MockTransport(handler))
    assert got == IMAGE
    (request,) = seen
    assert request.url.scheme == "https" and request.url.host == answer
    assert request.headers["Host"] == "images.example.com"
    assert request.extensions["sni_hostname"] == "images.example.com"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://metadata.example.com/latest/meta-data/", "forbidden_address"),
        ("http://evil.example.com:{p}/image.png", "forbidden_address"),
        ("http://127.0.0.1:{p}/image.png", "fqdn"),
        ("http://localhost:{p}/image.png", "fqdn"),
        ("http://0177.0.0.1:{p}/image.png", "fqdn"),
        ("http://[::1]:{p}/image.png", "fqdn"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://ok.example.com/", "scheme"),
    ],
)
async def test_redirect_to_forbidden_target_is_refused(server: Recorder, port: int, target: str, reason: str) -> None:
    resolver = FakeResolver(
        {
            "ok.example.com": ["127.0.0.1"],
            "metadata.example.com": ["169.254.169.254"],
            "localhost": ["127.0.0.1"],
            "evil.example.com": ["10.0.0.1"],
        }
    )
    url = f"http://ok.example.com:{port}/redirect?to={target.format(p=port)}"
    error = await refused(LOCAL, url, resolver)
    assert error.reason == reason
    assert len(server.connections) == 1  # the allowed first hop only
    assert resolver.calls[0] == "ok.example.com"


@pytest.mark.asyncio
async def test_redirects_are_followed_and_rechecked_per_hop(server: Recorder, port: int) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    assert await fetch(LOCAL, f"http://ok.example.com:{port}/chain/3", resolver) == IMAGE
    assert resolver.calls == ["ok.example.com"] * 4
    assert [path for path, _ in server.requests] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("max_redirects", "hops"), [(3, 4), (0, 1)])
async def test_too_many_redirects(server: Recorder, port: int, max_redirects: int, hops: int) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    policy = UrlPolicy(**{**LOCAL.__dict__, "max_redirects": max_redirects})
    error = await refused(policy, f"http://ok.example.com:{port}/chain/9", resolver)
    assert error.reason == "redirects"
    assert len(server.requests) == hops


@pytest.mark.asyncio
async def test_https_to_http_redirect_is_refused() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(302, headers={"Location": "http://images.example.com/cat.png"})

    resolver = FakeResolver({"images.example.com": ["93.184.216.34"]})
    error = await refused(UrlPolicy(), "https://images.example.com/a", resolver, httpx.MockTransport(handler))
    assert error.reason == "scheme" and len(seen) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/big-nolen", "/big-lying"])
async def test_byte_cap(server: Recorder, port: int, path: str) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    policy = UrlPolicy(**{**LOCAL.__dict__, "max_bytes": CAP})
    error = await refused(policy, f"http://ok.example.com:{port}{path}", resolver)
    assert error.reason == "too_large"


@pytest.mark.asyncio
async def test_byte_cap_counts_bytes_even_when_content_length_lies_low() -> None:
    async def body():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield b"x" * 100

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "image/png", "Content-Length": "10"}, content=body())

    resolver = FakeResolver({"images.example.com": ["93.184.216.34"]})
    policy = UrlPolicy(max_bytes=CAP)
    error = await refused(policy, "https://images.example.com/a.png", resolver, httpx.MockTransport(handler))
    assert error.reason == "too_large"
    exact = lambda r: httpx.Response(200, content=b"y" * CAP)  # noqa: E731
    assert await fetch(policy, "https://images.example.com/a.png", resolver, httpx.MockTransport(exact)) == b"y" * CAP


@pytest.mark.asyncio
async def test_encoded_body_is_refused_not_inflated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Accept-Encoding"] == "identity"
        return httpx.Response(
            200,
            headers={"Content-Type": "image/png", "Content-Encoding": "gzip"},
            content=gzip.compress(b"\0" * 100 * CAP),
        )

    resolver = FakeResolver({"images.example.com": ["93.184.216.34"]})
    error = await refused(UrlPolicy(), "https://images.example.com/a.png", resolver, httpx.MockTransport(handler))
    assert error.reason == "content_type"


@pytest.mark.asyncio
async def test_total_timeout_on_slow_drip(server: Recorder, port: int) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    policy = UrlPolicy(**{**LOCAL.__dict__, "total_timeout_s": 0.5})
    started = time.monotonic()
    error = await refused(policy, f"http://ok.example.com:{port}/slow", resolver)
    assert error.reason == "timeout"
    assert time.monotonic() - started < 1.5


@pytest.mark.asyncio
async def test_total_timeout_covers_dns() -> None:
    async def hanging(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return []

    fetcher = ImageFetcher(UrlPolicy(total_timeout_s=0.2), resolver=hanging)
    try:
        assert (await refused_with(fetcher, "https://images.example.com/a.png")).reason == "timeout"
    finally:
        await fetcher.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/status/404", "http_status"),
        ("/status/500", "http_status"),
        ("/status/304", "http_status"),
        ("/html", "content_type"),
    ],
)
async def test_bad_responses(server: Recorder, port: int, path: str, reason: str) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    error = await refused(LOCAL, f"http://ok.example.com:{port}{path}", resolver)
    assert error.reason == reason
    if reason == "http_status":
        assert error.message.endswith("Data pointed by URL could not be decoded into image.")


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/octet", "/notype", "/charset", "/status/203"])
async def test_acceptable_content_types(server: Recorder, port: int, path: str) -> None:
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    assert await fetch(LOCAL, f"http://ok.example.com:{port}{path}", resolver) == IMAGE


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "image/png"}, content=IMAGE)


PUBLIC = {
    h: ["93.184.216.34"]
    for h in (
        "example.com",
        "images.example.com",
        "evil.com",
        "cdn.evil.com",
        "notexample.com",
        "example.com.evil.net",
        "evil.com.net",
    )
}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("example.com", True),
        ("images.EXAMPLE.com", True),
        ("evil.com", False),
        ("notexample.com", False),
        ("example.com.evil.net", False),
    ],
)
async def test_allowlist(host: str, ok: bool) -> None:
    policy, resolver = UrlPolicy(allowlist=(" Example.COM ",)), FakeResolver(PUBLIC)
    url = f"https://{host}/a.png"
    if ok:
        assert await fetch(policy, url, resolver, httpx.MockTransport(_ok)) == IMAGE
    else:
        error = await refused(policy, url, resolver, httpx.MockTransport(_ok))
        assert error.reason == "allowlist" and resolver.calls == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("host", "ok"), [("evil.com", False), ("cdn.EVIL.com.", False), ("evil.com.net", True), ("example.com", True)]
)
async def test_denylist(host: str, ok: bool) -> None:
    policy, resolver = UrlPolicy(denylist=("evil.com",)), FakeResolver(PUBLIC)
    url = f"https://{host}/a.png"
    if ok:
        assert await fetch(policy, url, resolver, httpx.MockTransport(_ok)) == IMAGE
    else:
        error = await refused(policy, url, resolver, httpx.MockTransport(_ok))
        assert error.reason == "denylist" and resolver.calls == []


@pytest.mark.asyncio
async def test_url_input_disabled() -> None:
    error = await refused(UrlPolicy(allow_url_input=False), "https://images.example.com/a.png")
    assert error.reason == "url_disabled"
    assert error.message.endswith("Providing images via URL is not supported in this configuration of `inference`.")


@pytest.mark.asyncio
@pytest.mark.parametrize("answers", [None, []])
async def test_dns_failure(answers: list[str] | None) -> None:
    resolver = FakeResolver({} if answers is None else {"images.example.com": answers})
    assert (await refused(UrlPolicy(), "https://images.example.com/a.png", resolver)).reason == "dns"


@pytest.mark.asyncio
async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    resolver = FakeResolver({"ok.example.com": ["127.0.0.1"]})
    assert (await refused(LOCAL, f"http://ok.example.com:{closed_port}/a.png", resolver)).reason == "connect"


@pytest.mark.asyncio
async def test_logs_host_and_reason_but_never_the_url(caplog: pytest.LogCaptureFixture) -> None:
    resolver = FakeResolver({"images.example.com": ["10.0.0.1"]})
    with caplog.at_level(logging.INFO, logger="gateway.images.fetch"):
        error = await refused(UrlPolicy(), "https://images.example.com/a.png?token=SECRET", resolver)
    assert "images.example.com" in caplog.text and "forbidden_address" in caplog.text
    assert "SECRET" not in caplog.text and "SECRET" not in error.message


@pytest.mark.asyncio
async def test_cookies_are_not_kept_between_fetches() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Cookie"))
        return httpx.Response(200, headers={"Content-Type": "image/png", "Set-Cookie": "sid=1; Path=/"}, content=b"x")

    fetcher = ImageFetcher(UrlPolicy(), resolver=FakeResolver(PUBLIC), transport=httpx.MockTransport(handler))
    try:
        await fetcher.fetch("https://example.com/a.png")
        await fetcher.fetch("https://example.com/a.png")
    finally:
        await fetcher.aclose()
    assert seen == [None, None]


# --- real TLS: the pinned connection still verifies the certificate against the NAME -------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recorder, ssl.SSLContext]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=images.example.com",
            "-addext",
            "subjectAltName=DNS:images.example.com",
        ],
        check=True,
        capture_output=True,
        timeout=10,
    )
    server = Recorder(KeepAliveHandler)  # keep-alive on, so a pooled connection could be reused
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        server.sni.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]
    server.socket = context.wrap_socket(server.socket, server_side=True)
    client = ssl.create_default_context(cafile=str(cert))
    yield from ((s, client) for s in _serve(server))


@pytest.mark.asyncio
async def test_https_pinned_connection_verifies_certificate_for_the_name(tls: tuple[Recorder, ssl.SSLContext]) -> None:
    server, client_context = tls
    server.reset()
    port = server.server_address[1]
    resolver = FakeResolver({"images.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]})
    policy = UrlPolicy(extra_allowed_networks=("127.0.0.1/32",), total_timeout_s=3.0)
    transport = default_transport(verify=client_context)
    fetcher = ImageFetcher(policy, resolver=resolver, transport=transport)
    try:
        assert await fetcher.fetch(f"https://images.example.com:{port}/image.png") == IMAGE
        assert server.sni == ["images.example.com"]
        assert server.requests == [("/image.png", f"images.example.com:{port}")]
        # Same IP, but the certificate is not valid for this name: verification must fail (and no
        # kept-alive connection verified for images.example.com may carry this request).
        assert (await refused_with(fetcher, f"https://other.example.com:{port}/image.png")).reason == "connect"
        assert len(server.requests) == 1
    finally:
        await fetcher.aclose()
