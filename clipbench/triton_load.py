"""Triton over gRPC directly (tritonclient.grpc.aio): single-item requests, and the text-bucket A/B.

No gateway in between: the gap between these points and the gateway's is the gateway's own cost.
"""

from __future__ import annotations

import numpy as np

from clipbench.closedloop import Send
from clipbench.payloads import unique_prompt
from clipbench.session import Session
from clipbench.tritonstats import TENSORS

DTYPES = {"image": "UINT8", "text": "INT64"}


def tokenizer_buckets(session: Session) -> tuple[int, ...]:
    return tuple(int(b) for b in session.params("text")["text_buckets"].split(","))


class TritonPayloads:
    """8 random images of the exported size and 256 unique prompts tokenized to the 16-token bucket."""

    def __init__(self, session: Session) -> None:
        from gateway.text.tokenize import ClipTokenizer

        self.session = session
        size = int(session.params("image")["image_size"])
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (1, 3, size, size), dtype=np.uint8) for _ in range(8)]
        ids16 = ClipTokenizer().batch(
            [unique_prompt(i) for i in range(256)], truncate=False, buckets=tokenizer_buckets(session)
        )
        assert ids16.shape[1] == 16, ids16.shape
        self.arrays = {"image": images, "text": [ids16[i : i + 1] for i in range(256)]}

    def sender(self, tower: str, arrays: list[np.ndarray] | None = None) -> Send:
        """A closed-loop `send` cycling over `arrays` (default: this tower's payloads)."""
        from tritonclient.grpc import InferInput, InferRequestedOutput

        session, rows = self.session, arrays or self.arrays[tower]
        model = session.models[0 if tower == "image" else 1]
        iname, oname = TENSORS[tower]

        async def send(i: int) -> None:
            arr = rows[i % len(rows)]
            inp = InferInput(iname, list(arr.shape), DTYPES[tower])
            inp.set_data_from_numpy(arr)
            res = await session.aio.infer(model, [inp], outputs=[InferRequestedOutput(oname)], client_timeout=120)
            assert res.as_numpy(oname).shape[0] == arr.shape[0]

        return send


async def triton_direct(session: Session, payloads: TritonPayloads) -> None:
    """Image and text at each of --triton-levels."""
    for c in [] if session.args.only_ab else session.args.triton_levels:
        for op in ("image", "text"):
            session.step(f"triton gRPC {op} c={c}")
            await session.measure("triton", op, c, payloads.sender(op))
            session.advance()


async def _embed(session: Session, ids: np.ndarray) -> np.ndarray:
    from tritonclient.grpc import InferInput, InferRequestedOutput

    iname, oname = TENSORS["text"]
    inp = InferInput(iname, list(ids.shape), DTYPES["text"])
    inp.set_data_from_numpy(ids)
    res = await session.aio.infer(session.models[1], [inp], outputs=[InferRequestedOutput(oname)])
    return res.as_numpy(oname)


async def buckets(session: Session, payloads: TritonPayloads) -> None:
    """Text at [N,16] vs forced [N,77]: the embeddings must agree, and the throughput ratio is the gain."""
    from gateway.text.tokenize import ClipTokenizer

    tok = ClipTokenizer()
    prompts = [unique_prompt(500 + i) for i in range(32)]
    full = int(session.params("text")["context_length"])
    ids16 = tok.batch(prompts, truncate=False, buckets=tokenizer_buckets(session))
    ids77 = tok.batch(prompts, truncate=False, buckets=(full,))
    assert ids16.shape == (32, 16) and ids77.shape == (32, full)
    e16, e77 = await _embed(session, ids16), await _embed(session, ids77)
    cos = (e16 * e77).sum(1) / np.linalg.norm(e16, axis=1) / np.linalg.norm(e77, axis=1)
    session.extra["bucket_identity"] = {
        "max_abs_diff": float(np.abs(e16 - e77).max()),
        "min_cosine": float(cos.min()),
        "prompts": len(prompts),
        "bit_identical": bool(np.array_equal(e16, e77)),
    }
    c = session.args.bucket_concurrency
    rows = {"text16": [ids16[i : i + 1] for i in range(32)], "text77": [ids77[i : i + 1] for i in range(32)]}
    for rep in range(2):  # interleaved A/B/A/B
        for op in ("text16", "text77"):
            session.step(f"triton {op} c={c} (round {rep + 1})")
            await session.measure(
                "triton-bucket", op, c, payloads.sender("text", rows[op]), seconds=session.args.seconds / 2
            )
            session.advance()
