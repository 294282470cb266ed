"""Triton Python-backend runner for one TorchScript tower (the `cpu` target).

Copied as `model.py` next to each exported `model.pt`. Triton's dynamic batcher hands
`execute` a list of requests: they are concatenated, run in one forward pass and split back,
so batching actually pays. A failure fails each request of that batch with an error response
instead of raising out of `execute`.

Tensors cross the stub boundary through DLPack, never numpy: the 2.51 stub is compiled against
numpy 1.x, and with numpy 2 its `Tensor(name, ndarray)` silently sends 0 bytes.
"""

import json
import os
import warnings

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")  # torch.jit.load still works


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        # Thread oversubscription is the main hazard on CPU, across towers too: the exporter writes one
        # plan for all of them (triton_clip/threads.py). Inter-op threads must be set before any work.
        torch.set_num_threads(int(params.get("num_threads", "1")))
        if "interop_threads" in params:
            torch.set_num_interop_threads(int(params["interop_threads"]))
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        # `device` (default cpu): the same Python backend can serve a CUDA torch on a GPU host.
        self.device = torch.device(params.get("device", "cpu"))
        self.module = torch.jit.load(path, map_location=self.device).eval()
        if params.get("weights_random") == "true":
            pb_utils.Logger.log_warn(
                f"{args['model_name']}: RANDOM WEIGHTS (exported with --pretrained none). "
                "Embeddings are meaningless; export real weights for production."
            )

    def execute(self, requests):
        inputs = [from_dlpack(pb_utils.get_input_tensor_by_name(r, self.input_name).to_dlpack()) for r in requests]
        sizes = [t.shape[0] for t in inputs]
        try:
            # No TorchScript graph optimisation: on CPU it buys nothing at steady state (measured) and
            # costs 1-2 s of profiling on the first calls of each new shape, a latency spike under load.
            with torch.inference_mode(), torch.jit.optimized_execution(False):
                batch = inputs[0] if len(inputs) == 1 else torch.cat(inputs, dim=0)
                output = self.module(batch.to(self.device, non_blocking=True)).cpu()
        except Exception as exc:  # noqa: BLE001 - reported per request, the server stays up
            error = pb_utils.TritonError(f"{type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            part = output[start : start + size].contiguous()
            tensor = pb_utils.Tensor.from_dlpack(self.output_name, to_dlpack(part))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += size
        return responses
