"""The gateway's only door to Triton: served-version discovery and batched inference over gRPC.

What each version needs (image size, preprocessing, context length, dims) is read from the
model configs' `parameters`, written by the exporter (parsed in gateway/version_info.py), so the
gateway learns it from Triton itself and never from a folder shared with it.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc import InferInput, InferRequestedOutput, KeepAliveOptions, service_pb2
from tritonclient.grpc._utils import get_error_grpc
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from gateway.contract import ENCODED_INPUT, IMAGE_INPUT, IMAGE_OUTPUT, TEXT_INPUT, TEXT_OUTPUT
from gateway.endpoints import SERVICE_CONFIG, Endpoints
from gateway.errors import Overloaded, TritonUnavailable, image_error_from_triton
from gateway.version_info import VersionInfo, versions_from_configs

log = logging.getLogger("gateway.triton")

__all__ = [
    "ENCODED_INPUT",
    "IMAGE_INPUT",
    "IMAGE_OUTPUT",
    "TEXT_INPUT",
    "TEXT_OUTPUT",
    "FILE_INPUT",
    "FILE_OUTPUT",
    "TritonClient",
]
FILE_INPUT, FILE_OUTPUT = "request__0", "file__0"  # the tokenizer model (triton_clip/tokenizer_model.py)
_MAX_MESSAGE = 2**31 - 1  # tritonclient's own default (MAX_GRPC_MESSAGE_SIZE)
_UNAVAILABLE_CODES = {
    "StatusCode.UNAVAILABLE",
    "StatusCode.DEADLINE_EXCEEDED",
    "StatusCode.NOT_FOUND",
    "StatusCode.CANCELLED",
    "StatusCode.UNKNOWN",
}


def _translate(exc: InferenceServerException) -> Exception:
    text = exc.message() or str(exc)
    image_error = image_error_from_triton(text)  # the preprocessing model could not decode it: a 400
    if image_error is not None:
        return image_error
    lowered = text.lower()
    if "queue size" in lowered or ("timeout" in lowered and "queue" in lowered):
        return Overloaded("The inference server's queue is full; retry shortly.")
    if exc.status() in _UNAVAILABLE_CODES or exc.status() is None:
        return TritonUnavailable()
    return exc


def channel_args() -> list[tuple[str, int]]:
    """tritonclient's default channel options, plus a short reconnect backoff.

    gRPC's default backoff after failed connects grows 1.6x per try up to 120 s, so after a Triton
    outage of a few tens of seconds the channel would keep failing fast (503) for many seconds
    after Triton is back. Capped at 1 s, the gateway recovers within about a second.
    """
    keepalive = KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", keepalive.keepalive_permit_without_calls),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # Round-robin over every replica, one retry of an UNAVAILABLE inference (gateway/endpoints.py).
        ("grpc.service_config", SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.per_rpc_retry_buffer_size", 64 * 2**20),  # default 256 KiB: an image batch would not be retried
        ("grpc.dns_min_time_between_resolutions_ms", 2000),
    ]


class TritonClient:
    """One gRPC channel per worker process (over every replica), created and closed by the app's lifespan."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.endpoints = Endpoints(url)
        self._client = grpcclient.InferenceServerClient(url=self.endpoints.target, channel_args=channel_args())
        self._stub = self._client._client_stub  # the same channel; used raw on the hot path (see _request)
        self._templates: dict[tuple[str, str, str, str], service_pb2.ModelInferRequest] = {}
        self._retired: list[grpcclient.InferenceServerClient] = []

    async def close(self) -> None:
        for client in (*self._retired, self._client):
            await client.close()

    async def follow_replicas(self) -> None:
        """Periodic re-resolution: a new channel when the name's addresses changed (replicas scaled).

        The previous channel is closed one call later, so requests in flight on it finish.
        """
        for old in self._retired:
            await old.close()
        self._retired = []
        if self.endpoints.changed():
            log.info("Triton replicas now %s", ", ".join(sorted(self.endpoints.addresses)))
            self._retired = [self._client]
            self._client = grpcclient.InferenceServerClient(url=self.endpoints.target, channel_args=channel_args())
            self._stub = self._client._client_stub

    async def _call(self, coro):  # noqa: ANN001, ANN202 - every RPC gets the same error translation
        try:
            return await coro
        except InferenceServerException as exc:
            raise _translate(exc) from exc

    async def discover(self) -> dict[str, VersionInfo]:
        index = await self._call(self._client.get_model_repository_index(as_json=True, client_timeout=self.timeout_s))
        names = [m["name"] for m in index.get("models", []) if m.get("state") == "READY"]
        configs = await asyncio.gather(
            *(self._call(self._client.get_model_config(n, as_json=True, client_timeout=self.timeout_s)) for n in names)
        )
        return versions_from_configs([c["config"] for c in configs])

    async def ready(self, models: list[str]) -> bool:
        try:
            if not await self._client.is_server_ready(client_timeout=2.0):
                return False
            checks = await asyncio.gather(*(self._client.is_model_ready(m, client_timeout=2.0) for m in models))
            return all(checks)
        except InferenceServerException:
            return False

    def _request(
        self, model: str, input_name: str, output_name: str, batch: np.ndarray
    ) -> service_pb2.ModelInferRequest:
        """The ModelInferRequest `client.infer` would send, built from a per-model template.

        No InferInput/InferResult objects and one copy of the tensor: tritonclient's per-call wrappers
        and building the nested protobuf were a measurable share of a short request's CPU
        (docs/benchmarks.md, "Serving cost"); copying a template is about half the cost of building it.
        """
        datatype = "UINT8" if batch.dtype == np.uint8 else "INT64"
        key = (model, input_name, output_name, datatype)
        template = self._templates.get(key)
        if template is None:
            template = service_pb2.ModelInferRequest(
                model_name=model,
                inputs=[service_pb2.ModelInferRequest.InferInputTensor(name=input_name, datatype=datatype)],
                outputs=[service_pb2.ModelInferRequest.InferRequestedOutputTensor(name=output_name)],
            )
            # `timeout` (µs) overrides the queue policy's default_timeout_microseconds (the exporter sets
            # allow_timeout_override): Triton drops a request still queued when the gateway stops waiting.
            template.parameters["timeout"].int64_param = int(self.timeout_s * 1_000_000)
            self._templates[key] = template
        request = service_pb2.ModelInferRequest()
        request.CopyFrom(template)
        request.inputs[0].shape.extend(batch.shape)
        request.raw_input_contents.append(batch.tobytes())
        return request

    async def _infer_one(self, model: str, input_name: str, output_name: str, batch: np.ndarray) -> np.ndarray:
        request = self._request(model, input_name, output_name, batch)
        try:
            response = await self._stub.ModelInfer(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise _translate(get_error_grpc(exc)) from exc
        out = response.outputs[0]
        return np.frombuffer(response.raw_output_contents[0], dtype=triton_to_np_dtype(out.datatype)).reshape(out.shape)

    async def infer(
        self, model: str, input_name: str, output_name: str, batch: np.ndarray, max_batch: int
    ) -> np.ndarray:
        """Run a batch, split into Triton-sized requests (sent concurrently, results in order)."""
        if len(batch) <= max_batch:
            return await self._infer_one(model, input_name, output_name, batch)
        chunks = [batch[i : i + max_batch] for i in range(0, len(batch), max_batch)]
        parts = await asyncio.gather(*(self._infer_one(model, input_name, output_name, c) for c in chunks))
        return np.concatenate(parts, axis=0)

    async def fetch_file(self, model: str) -> bytes:
        """The file a tokenizer model serves (one call per new tokenizer, not per request)."""
        request = InferInput(FILE_INPUT, [1, 1], "UINT8")
        request.set_data_from_numpy(np.zeros((1, 1), dtype=np.uint8))
        result = await self._call(
            self._client.infer(
                model, [request], outputs=[InferRequestedOutput(FILE_OUTPUT)], client_timeout=self.timeout_s
            )
        )
        return result.as_numpy(FILE_OUTPUT)[0].tobytes()
