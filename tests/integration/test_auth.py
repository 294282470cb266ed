"""Optional API keys, end to end on a real gateway process started the way the image starts it.

Keys come from GATEWAY_API_KEYS and GATEWAY_API_KEYS_FILE together. A key is read from the query
(`api_key`), then `Authorization: Bearer`, then the body (upstream's order: the first one present
is the one checked). Missing or wrong: 401 with upstream's message. The gateway runs at DEBUG
log level with uvicorn's access log left on (as in gateway/Dockerfile), and no key, right or
wrong, may appear in its log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.errors import UNAUTHORIZED_MESSAGE
from tests.conftest import GatewayServer, start_gateway, stop_process
from tests.integration.payloads import image, png_bytes

pytestmark = pytest.mark.timeout(120)

ENV_KEYS = ("sk-env-4e1f0c9b7a2d", "sk-env-second-93b7e5")
FILE_KEY = "sk-file-5d2a8f61c0e4"
WRONG_KEY = "sk-wrong-0a9f7c3e1b2d"
ALL_KEYS = (*ENV_KEYS, FILE_KEY, WRONG_KEY)
PNG = png_bytes()
BODIES = {
    "/clip/embed_image": {"image": image(PNG)},
    "/clip/embed_text": {"text": ["a photo of a dog"]},
    "/clip/compare": {"subject": image(PNG), "prompt": ["a dog", "a cat"]},
}
PLACES = ("query", "bearer", "body")


def start_production_like(triton, log_file: Path, **extra_env: str) -> GatewayServer:
    """The gateway as gateway/Dockerfile's CMD runs it (access log on), but on 127.0.0.1."""
    return start_gateway(triton, log_file, access_log=True, **extra_env)


@pytest.fixture(scope="module")
def keyed(triton, tmp_path_factory) -> Iterator[GatewayServer]:
    folder = tmp_path_factory.mktemp("auth")
    key_file = folder / "keys.txt"
    key_file.write_text(f"\n  {FILE_KEY}  \n\n")
    server = start_production_like(
        triton,
        folder / "gateway.log",
        GATEWAY_API_KEYS=",".join(ENV_KEYS),
        GATEWAY_API_KEYS_FILE=str(key_file),
        GATEWAY_LOG_LEVEL="DEBUG",
    )
    try:
        yield server
    finally:
        stop_process(server.proc)


@pytest.fixture(scope="module")
def client(keyed: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed.base_url, timeout=20) as c:
        yield c


def call(client: httpx.Client, route: str, place: str | None, key: str | None) -> httpx.Response:
    body = dict(BODIES[route])
    params, headers = {}, {}
    if place == "query":
        params["api_key"] = key
    elif place == "bearer":
        headers["Authorization"] = f"Bearer {key}".strip()  # h11 refuses a trailing space
    elif place == "body":
        body["api_key"] = key
    return client.post(route, json=body, params=params, headers=headers)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"message": UNAUTHORIZED_MESSAGE}
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("route", list(BODIES))
def test_missing_key_is_401(client: httpx.Client, route: str) -> None:
    assert_unauthorized(call(client, route, None, None))


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("route", list(BODIES))
def test_wrong_key_is_401(client: httpx.Client, route: str, place: str) -> None:
    assert_unauthorized(call(client, route, place, WRONG_KEY))


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("route", list(BODIES))
def test_empty_key_is_401(client: httpx.Client, route: str, place: str) -> None:
    assert_unauthorized(call(client, route, place, ""))


@pytest.mark.parametrize("key", [*ENV_KEYS, FILE_KEY], ids=["env-key-1", "env-key-2", "file-key"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("route", list(BODIES))
def test_right_key_is_accepted(client: httpx.Client, route: str, place: str, key: str) -> None:
    response = call(client, route, place, key)
    assert response.status_code == 200, response.text


def test_key_is_compared_exactly(client: httpx.Client) -> None:
    for near in (ENV_KEYS[0].upper(), ENV_KEYS[0] + "x", ENV_KEYS[0][:-1], f" {ENV_KEYS[0]}x", "\u00e9" + ENV_KEYS[0]):
        assert_unauthorized(call(client, "/clip/embed_text", "body", near))


def test_scheme_must_be_bearer(client: httpx.Client) -> None:
    response = client.post(
        "/clip/embed_text", json=BODIES["/clip/embed_text"], headers={"Authorization": f"Basic {ENV_KEYS[0]}"}
    )
    assert_unauthorized(response)
    response = client.post(
        "/clip/embed_text", json=BODIES["/clip/embed_text"], headers={"Authorization": f"bearer {ENV_KEYS[0]}"}
    )
    assert response.status_code == 200  # the scheme name is case-insensitive (RFC 9110)


def test_upstream_precedence_query_then_header_then_body(client: httpx.Client) -> None:
    """The first key present is the one checked: a right key further down does not rescue a wrong one."""
    route, body = "/clip/embed_text", BODIES["/clip/embed_text"]
    right = ENV_KEYS[0]
    assert_unauthorized(
        client.post(
            route,
            params={"api_key": WRONG_KEY},
            json={**body, "api_key": right},
            headers={"Authorization": f"Bearer {right}"},
        )
    )
    assert (
        client.post(
            route,
            params={"api_key": right},
            json={**body, "api_key": WRONG_KEY},
            headers={"Authorization": f"Bearer {WRONG_KEY}"},
        ).status_code
        == 200
    )
    assert_unauthorized(
        client.post(route, json={**body, "api_key": right}, headers={"Authorization": f"Bearer {WRONG_KEY}"})
    )
    assert (
        client.post(
            route, json={**body, "api_key": WRONG_KEY}, headers={"Authorization": f"Bearer {right}"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize("path", ["/healthz", "/readiness"])
def test_probes_need_no_key(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 200


def test_info_says_auth_is_required_without_leaking_keys(client: httpx.Client) -> None:
    response = client.get("/info")
    assert response.status_code == 200
    assert response.json()["auth_required"] is True
    assert not any(key in response.text for key in ALL_KEYS)


def test_keys_never_appear_in_the_log(client: httpx.Client, keyed: GatewayServer) -> None:
    """Runs last in this module: every key has been sent in every place by then."""
    for place in PLACES:  # make sure each key went through each place at least once more
        for key in ALL_KEYS:
            call(client, "/clip/embed_text", place, key)
    assert keyed.proc.poll() is None
    log = keyed.log_file.read_text(errors="replace")
    assert '"status":401' in log and '"status":200' in log, "the access log is not being written"
    for key in ALL_KEYS:
        assert key not in log, f"a key leaked into the gateway log: {key[:6]}..."
