"""GATEWAY_TRITON_URL → the gRPC channel target, and the channel's round-robin + retry service config."""

from __future__ import annotations

import json

import pytest

from gateway.endpoints import SERVICE_CONFIG, Endpoints, grpc_target
from gateway.triton import channel_args


def test_single_endpoint_and_dns_targets_go_to_grpcs_resolver_unchanged() -> None:
    assert grpc_target("triton:8001") == "triton:8001"
    assert grpc_target(" dns:///clip-triton-grpc:8001 ") == "dns:///clip-triton-grpc:8001"


def test_comma_list_becomes_a_static_address_list() -> None:
    assert grpc_target("127.0.0.1:8001, 127.0.0.2:9001") == "ipv4:127.0.0.1:8001,127.0.0.2:9001"
    assert grpc_target("[::1]:8001,[::2]:8001") == "ipv6:[::1]:8001,[::2]:8001"
    assert grpc_target("localhost:8001,127.0.0.2:8001") == "ipv4:127.0.0.1:8001,127.0.0.2:8001"


@pytest.mark.parametrize("bad", ["127.0.0.1,127.0.0.2:8001", "127.0.0.1:8001,[::1]:8001", "a:b,c:d"])
def test_bad_lists_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        grpc_target(bad)


def test_names_are_followed_and_static_lists_are_not() -> None:
    assert Endpoints("localhost:8001").dynamic and Endpoints("dns:///localhost:8001").addresses
    static = Endpoints("127.0.0.1:1,127.0.0.1:2")
    assert not static.dynamic and not static.changed()


def test_channel_round_robins_and_retries_unavailable_inferences_once() -> None:
    args = dict(channel_args())
    config = json.loads(args["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method,) = config["methodConfig"]
    assert method["name"] == [{"service": "inference.GRPCInferenceService", "method": "ModelInfer"}]
    assert method["retryPolicy"]["maxAttempts"] == 2
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert args["grpc.enable_retries"] == 1
    assert config == json.loads(SERVICE_CONFIG)


def test_a_name_whose_addresses_change_gets_a_new_channel(monkeypatch) -> None:
    """Periodic re-resolution: replicas added behind a name get a channel that knows them."""
    import asyncio

    from gateway import endpoints
    from gateway.triton import TritonClient

    answers = [["10.0.0.1"], ["10.0.0.1"], ["10.0.0.1", "10.0.0.2"], []]
    monkeypatch.setattr(endpoints, "_resolve", lambda host, port, family=0: answers.pop(0))

    async def scenario() -> None:
        client = TritonClient("localhost:1", 1.0)  # a gRPC channel connects lazily: nothing is dialled here
        first = client._client
        await client.follow_replicas()  # same addresses: same channel
        assert client._client is first
        await client.follow_replicas()  # a second replica: new channel, the old one closed on the next call
        assert client._client is not first and client._retired == [first]
        assert client.endpoints.addresses == {"10.0.0.1", "10.0.0.2"}
        await client.follow_replicas()  # a failed lookup keeps what we had
        assert client._retired == [] and client.endpoints.addresses == {"10.0.0.1", "10.0.0.2"}
        await client.close()

    asyncio.run(scenario())
