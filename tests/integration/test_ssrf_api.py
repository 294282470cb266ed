"""SSRF through the HTTP API: in-process gateways (real lifespan, real session Triton) whose URL fetcher
has a fake resolver (no DNS) and a transport that records every request it is asked to send.

A plain-http server on 127.0.0.1 serves a real PNG and records every connection. Every forbidden
target is refused with 400 `Could not load input image. Cause: ...` and nothing reaches it; the same
local image embeds (200) once the flags allow http, hosts without an FQDN and non-global addresses;
each refusal is counted in `clip_gateway_url_fetch_failures_total{reason=...}`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tests.servers import RecordingServer, serve_in_thread
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gateway.images.fetch import FORBIDDEN, NO_FQDN, NON_HTTPS, ImageFetcher, UrlPolicy, default_transport
from gateway.main import create_app
from gateway.settings import Settings
from tests.integration.payloads import image, png_bytes

pytestmark = pytest.mark.timeout(120)

PNG = png_bytes(24, 24, (10, 120, 240))
IMAGE_ERROR = "Could not load input image. Cause: "
INVALID_URL = "Provided image URL is invalid."


class Recorder(RecordingServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.paths: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.paths.clear()


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(self.path)
        parts = urlsplit(self.path)
        if parts.path == "/image.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)
        elif parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", parse_qs(parts.query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


class RecordingTransport(httpx.AsyncBaseTransport):
    """The production transport, recording the (pinned) host of every request it is asked to send."""

    def __init__(self) -> None:
        self.inner = default_transport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class FakeResolver:
    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def __call__(self, host: str, port: int) -> list[str]:
        if host not in self.table:
            raise OSError(f"unknown host {host}")
        return list(self.table[host])


RESOLVER = FakeResolver(
    {
        "images.example.com": ["127.0.0.1"],  # a public-looking name resolving to loopback
        "metadata.example.com": ["169.254.169.254"],
        "intranet.example.com": ["10.1.2.3"],
        "mixed.example.com": ["93.184.216.34", "192.168.1.20"],  # one private answer is enough to refuse
        "v6.example.com": ["::1"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
        "cdn.example.com": ["127.0.0.1"],
        "internal.example.com": ["192.168.1.20"],
        "imagehost": ["127.0.0.1"],  # no FQDN
    }
)


@dataclass
class Gateway:
    client: TestClient
    transport: RecordingTransport

    def embed_url(self, url: str) -> httpx.Response:
        return self.client.post("/clip/embed_image", json={"image": {"type": "url", "value": url}})

    def failures(self) -> dict[str, float]:
        text = self.client.get("/metrics").text
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "clip_gateway_url_fetch_failures_total":
                    out[sample.labels["reason"]] = sample.value
        return out


@contextmanager
def in_process_gateway(triton, policy: UrlPolicy) -> Iterator[Gateway]:
    transport = RecordingTransport()
    fetcher = ImageFetcher(policy, resolver=RESOLVER, transport=transport)
    settings = Settings(triton_url=triton.grpc, clip_version_id="clip-tiny", model_refresh_s=1.0, log_level="WARNING")
    with TestClient(create_app(settings, fetcher=fetcher), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 20
        while client.get("/readiness").status_code != 200:
            assert time.monotonic() < deadline, "in-process gateway never became ready"
            time.sleep(0.1)
        yield Gateway(client, transport)


def _policy(**flags: object) -> UrlPolicy:
    return UrlPolicy(connect_timeout_s=1.0, total_timeout_s=3.0, **flags)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    yield from serve_in_thread(Recorder())


@pytest.fixture
def port(recorder: Recorder) -> int:
    recorder.reset()
    return recorder.server_address[1]


@pytest.fixture(scope="module")
def guarded(triton) -> Iterator[Gateway]:
    """http and hosts without an FQDN allowed, so every URL reaches the address check."""
    with in_process_gateway(triton, _policy(allow_non_https=True, allow_without_fqdn=True)) as gw:
        yield gw


@pytest.fixture(scope="module")
def redirecting(triton) -> Iterator[Gateway]:
    """As `guarded`, plus 127.0.0.1 (only) let through, so a first hop can reach the local server."""
    policy = _policy(allow_non_https=True, allow_without_fqdn=True, extra_allowed_networks=("127.0.0.1/32",))
    with in_process_gateway(triton, policy) as gw:
        yield gw


@pytest.fixture(scope="module")
def open_flags(triton) -> Iterator[Gateway]:
    policy = _policy(allow_non_https=True, allow_without_fqdn=True, allow_non_global=True)
    with in_process_gateway(triton, policy) as gw:
        yield gw


@pytest.fixture(scope="module")
def defaults(triton) -> Iterator[Gateway]:
    with in_process_gateway(triton, _policy()) as gw:
        yield gw


# host (as written in the URL) -> expected cause. {port} is the local recorder's port.
FORBIDDEN_TARGETS = {
    "loopback": ("127.0.0.1", FORBIDDEN),
    "loopback-other": ("127.0.0.53", FORBIDDEN),
    "ipv6-loopback": ("[::1]", FORBIDDEN),
    "ten-slash-8": ("10.0.0.1", FORBIDDEN),
    "172-16-slash-12-low": ("172.16.0.1", FORBIDDEN),
    "172-16-slash-12-high": ("172.31.255.254", FORBIDDEN),
    "192-168-slash-16": ("192.168.1.1", FORBIDDEN),
    "cloud-metadata": ("169.254.169.254", FORBIDDEN),
    "cgnat-100-64-slash-10": ("100.64.0.1", FORBIDDEN),
    "unspecified": ("0.0.0.0", FORBIDDEN),
    "ipv6-unspecified": ("[::]", FORBIDDEN),
    "ipv4-mapped-loopback": ("[::ffff:127.0.0.1]", FORBIDDEN),
    "ipv4-mapped-hex": ("[::ffff:7f00:1]", FORBIDDEN),
    "nat64-loopback": ("[64:ff9b::7f00:1]", FORBIDDEN),
    "ipv6-link-local": ("[fe80::1]", FORBIDDEN),
    "ipv6-unique-local": ("[fd00::1]", FORBIDDEN),
    "decimal-ip": ("2130706433", FORBIDDEN),
    "hex-ip": ("0x7f000001", FORBIDDEN),
    "short-ip": ("127.1", FORBIDDEN),
    "octal-single-number": ("017700000001", FORBIDDEN),
    "octal-dotted": ("0177.0.0.1", INVALID_URL),  # httpx cannot even parse it: refused as invalid
    "trailing-dot": ("127.0.0.1.", FORBIDDEN),
    "name-to-loopback": ("images.example.com", FORBIDDEN),
    "name-to-metadata": ("metadata.example.com", FORBIDDEN),
    "name-to-private": ("intranet.example.com", FORBIDDEN),
    "name-with-one-private-answer": ("mixed.example.com", FORBIDDEN),
    "name-to-ipv6-loopback": ("v6.example.com", FORBIDDEN),
    "name-to-mapped-loopback": ("mapped.example.com", FORBIDDEN),
}


@pytest.mark.parametrize("name", list(FORBIDDEN_TARGETS))
def test_forbidden_target_is_refused_before_any_connection(
    guarded: Gateway, recorder: Recorder, port: int, name: str
) -> None:
    host, cause = FORBIDDEN_TARGETS[name]
    sent_before = len(guarded.transport.hosts)
    before = guarded.failures()
    response = guarded.embed_url(f"http://{host}:{port}/image.png")
    assert response.status_code == 400, response.text
    assert response.json() == {"message": IMAGE_ERROR + cause}
    assert recorder.connections == [], "a forbidden target was connected to"
    assert guarded.transport.hosts[sent_before:] == [], "a request to a forbidden target was sent"
    reason = "forbidden_address" if cause == FORBIDDEN else "fqdn"
    assert guarded.failures().get(reason, 0) == before.get(reason, 0) + 1


REDIRECT_TARGETS = {
    "to-metadata": "http://169.254.169.254/latest/meta-data/",
    "to-private-ip": "http://10.0.0.7:{port}/image.png",
    "to-ipv6-loopback": "http://[::1]:{port}/image.png",
    "to-name-resolving-private": "http://internal.example.com:{port}/image.png",
    "to-other-loopback-decimal": "http://2130706434:{port}/image.png",
}


@pytest.mark.parametrize("name", list(REDIRECT_TARGETS))
def test_redirect_from_allowed_url_to_forbidden_target_is_refused(
    redirecting: Gateway, recorder: Recorder, port: int, name: str
) -> None:
    target = REDIRECT_TARGETS[name].format(port=port)
    sent_before = len(redirecting.transport.hosts)
    before = redirecting.failures().get("forbidden_address", 0)
    response = redirecting.embed_url(f"http://cdn.example.com:{port}/redirect?to={quote(target, safe='')}")
    assert response.status_code == 400, response.text
    assert response.json() == {"message": IMAGE_ERROR + FORBIDDEN}
    assert recorder.paths == [f"/redirect?to={quote(target, safe='')}"]  # the first hop only
    assert len(recorder.connections) == 1
    assert redirecting.transport.hosts[sent_before:] == ["127.0.0.1"], "the forbidden hop was sent"
    assert redirecting.failures().get("forbidden_address", 0) == before + 1


def test_redirect_to_allowed_target_is_followed(redirecting: Gateway, recorder: Recorder, port: int) -> None:
    """Control for the test above: the same redirect to an allowed target works."""
    response = redirecting.embed_url(f"http://cdn.example.com:{port}/redirect?to=%2Fimage.png")
    assert response.status_code == 200, response.text
    assert recorder.paths == ["/redirect?to=%2Fimage.png", "/image.png"]


@pytest.mark.parametrize("host", ["127.0.0.1", "imagehost", "images.example.com"])
def test_local_image_embeds_when_flags_allow(open_flags: Gateway, recorder: Recorder, port: int, host: str) -> None:
    """http + no FQDN + non-global allowed: the local image is fetched and embedded like its base64 twin."""
    response = open_flags.embed_url(f"http://{host}:{port}/image.png")
    assert response.status_code == 200, response.text
    assert recorder.paths == ["/image.png"]
    twin = open_flags.client.post("/clip/embed_image", json={"image": image(PNG)})
    assert response.json()["embeddings"] == twin.json()["embeddings"]


@pytest.mark.parametrize(
    ("url", "cause", "reason"),
    [
        ("http://images.example.com:{port}/image.png", NON_HTTPS, "scheme"),
        ("https://127.0.0.1:{port}/image.png", NO_FQDN, "fqdn"),
        ("https://imagehost:{port}/image.png", NO_FQDN, "fqdn"),
        ("https://images.example.com:{port}/image.png", FORBIDDEN, "forbidden_address"),
    ],
)
def test_default_flags_refuse_without_connecting(
    defaults: Gateway, recorder: Recorder, port: int, url: str, cause: str, reason: str
) -> None:
    before = defaults.failures().get(reason, 0)
    response = defaults.embed_url(url.format(port=port))
    assert response.status_code == 400, response.text
    assert response.json() == {"message": IMAGE_ERROR + cause}
    assert recorder.connections == []
    assert defaults.failures().get(reason, 0) == before + 1


def test_unresolvable_name_is_a_400_and_counted(defaults: Gateway) -> None:
    before = defaults.failures().get("dns", 0)
    response = defaults.embed_url("https://nowhere.example.com/image.png")
    assert response.status_code == 400
    assert response.json()["message"].startswith(IMAGE_ERROR)
    assert defaults.failures().get("dns", 0) == before + 1


def test_forbidden_url_inside_compare_and_list(guarded: Gateway, recorder: Recorder, port: int) -> None:
    """URL checks apply wherever an image is accepted: compare subjects/prompts and image lists."""
    url = f"http://169.254.169.254:{port}/latest/meta-data/"
    compare = guarded.client.post("/clip/compare", json={"subject": url, "prompt": "a cat"})
    assert compare.status_code == 400 and compare.json() == {"message": IMAGE_ERROR + FORBIDDEN}
    listed = guarded.client.post("/clip/embed_image", json={"image": [image(PNG), {"type": "url", "value": url}]})
    assert listed.status_code == 400
    assert listed.json() == {"message": IMAGE_ERROR + "image at index 1: " + FORBIDDEN}
    assert recorder.connections == []
