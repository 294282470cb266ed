"""Where Triton is: one or several replicas, and gRPC's client-side round-robin over them.

kube-proxy (a ClusterIP Service) balances connections, not requests, and the gateway keeps one
long-lived HTTP/2 channel: every request would go to one replica. So the channel itself knows
every replica and picks one per call:

- `host:port`: gRPC's DNS resolver, every address of the name (a headless Service, a compose
  service scaled to N containers);
- `dns:///name:port`: the same, spelled explicitly;
- `a:port,b:port`: a fixed list (names in it are resolved once, at start).

gRPC re-resolves a name when a connection fails; `Endpoints.changed()` also re-resolves it
periodically (the gateway's refresh loop), so replicas added later are picked up. A replica that
goes away drops out of the pick list; an inference that fails with UNAVAILABLE is retried once by
gRPC itself (service-config retry policy), which picks another replica.
"""

from __future__ import annotations

import ipaddress
import json
import socket

_INFER = [{"service": "inference.GRPCInferenceService", "method": "ModelInfer"}]
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": _INFER,
                # Embedding is idempotent: one more try, on another replica, before the gateway answers 503.
                "retryPolicy": {
                    "maxAttempts": 2,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def _split(endpoint: str) -> tuple[str, str]:
    host, _, port = endpoint.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Triton endpoint {endpoint!r} is not host:port")
    return host.strip("[]"), port


def _ip_version(host: str) -> int | None:
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _resolve(host: str, port: str, family: int = 0) -> list[str]:
    infos = socket.getaddrinfo(host, int(port), family=family, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def grpc_target(url: str) -> str:
    """The gRPC channel target for GATEWAY_TRITON_URL (see the module docstring)."""
    url = url.strip()
    if url.startswith("dns:") or "," not in url:
        return url
    addresses: list[tuple[str, str]] = []
    for endpoint in filter(None, (e.strip() for e in url.split(","))):
        host, port = _split(endpoint)
        hosts = [host] if _ip_version(host) else _resolve(host, port, socket.AF_INET)
        addresses += [(h, port) for h in hosts]
    versions = {_ip_version(h) for h, _ in addresses}
    if versions == {6}:
        return "ipv6:" + ",".join(f"[{h}]:{p}" for h, p in addresses)
    if versions != {4}:
        raise ValueError(f"Triton endpoints {url!r} mix IPv4 and IPv6 addresses")
    return "ipv4:" + ",".join(f"{h}:{p}" for h, p in addresses)


class Endpoints:
    """The addresses behind a DNS-style target, to notice replicas that appeared or left."""

    def __init__(self, url: str) -> None:
        self.url = url.strip()
        self.target = grpc_target(self.url)
        self.dynamic = not self.target.startswith(("ipv4:", "ipv6:"))
        self.addresses = self.resolve()

    def resolve(self) -> frozenset[str]:
        if not self.dynamic:
            return frozenset()
        host, port = _split(self.url.removeprefix("dns:").lstrip("/").split("/")[-1])
        try:
            return frozenset(_resolve(host, port))
        except OSError:
            return self.addresses if hasattr(self, "addresses") else frozenset()

    def changed(self) -> bool:
        """Re-resolve; True if the set of addresses differs from the last one seen (non-empty only)."""
        now = self.resolve()
        if now and now != self.addresses:
            self.addresses = now
            return True
        return False
