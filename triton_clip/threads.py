"""One CPU thread plan for every model Triton serves at once (image and text towers of all versions).

Each CPU tower runs in its own Python-backend stub process with its own torch/OpenMP pool. Sizing
each pool to the cores (`instances x threads <= cores` per tower) is right for one tower alone and
wrong for two at once: both pools spin-wait on the same cores (GNU OpenMP spins before it sleeps),
and mixed image+text traffic ran at 0.27 of the single-modality rates (issue 14). Plans:

* `split` (default): several single-threaded instances per tower (`cores` of them, at most
  SPLIT_MAX_INSTANCES; more cores go to threads per instance), 1 inter-op thread, and OpenMP threads that
  sleep when they wait (`OMP_WAIT_POLICY=PASSIVE`). With one thread per instance there is no pool whose
  threads wait for each other: busy towers are plain processes the OS time-shares. Alone, a tower still
  uses every core through its instances. Costs one copy of the weights per instance.
* `passive`: one instance per tower with all cores, PASSIVE wait policy. Fixes the spinning, but two busy
  pools still time-share the cores (each parallel region waits for its descheduled partner).
* `shared`: as `passive`, plus Triton's rate limiter: every instance claims the global resource
  `cpu_cores` = cores, so exactly one execution runs at a time, texts first. A closed-loop text client
  then waits behind every image batch (texts/s fall to the image rate).
* `legacy`: the previous behaviour (all cores per tower, OpenMP default), for A/B runs.

Every plan holds for any number of towers and versions. The measurements that chose the default are
in docs/benchmarks.md (section 9) and docs/mixed-traffic.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.contract import Param

PLANS = ("split", "passive", "shared", "legacy")
DEFAULT_PLAN = "split"
SPLIT_MAX_INSTANCES = 4  # memory: one copy of the weights per instance
PLAN_ENV = "CLIP_CPU_PLAN"
RESOURCE = "cpu_cores"
PRIORITY = {"text": 1, "image": 2}  # Triton: priority 2 gets half the scheduling chances of priority 1
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


@dataclass(frozen=True)
class ModelThreads:
    """What one CPU model gets: torch intra-/inter-op threads, instances, and its rate-limiter claim."""

    plan: str
    num_threads: int
    instances: int
    interop_threads: int = 1
    resource: int = 0  # claim on `cpu_cores` per execution; 0 = not rate limited
    priority: int = 1

    def parameters(self) -> dict[str, str]:
        """Model-config parameters the runner reads (`torch.set_num_threads` and friends)."""
        return {
            "cpu_plan": self.plan,
            "num_threads": str(self.num_threads),
            "interop_threads": str(self.interop_threads),
        }

    def instance_group(self, kind: str = "KIND_CPU") -> str:
        limiter = ""
        if self.resource:
            limiter = (
                f' rate_limiter {{ resources [ {{ name: "{RESOURCE}" global: true count: {self.resource} }} ]'
                f" priority: {self.priority} }}"
            )
        return f"instance_group [ {{ count: {self.instances} kind: {kind}{limiter} }} ]"


def model_threads(tower: str, cores: int, plan: str = DEFAULT_PLAN) -> ModelThreads:
    """The plan for one tower; it does not depend on how many other towers are served (see above)."""
    cores = max(1, cores)
    if plan == "shared":
        return ModelThreads(plan, cores, 1, 1, resource=cores, priority=PRIORITY.get(tower, 1))
    if plan == "split":
        instances = min(cores, SPLIT_MAX_INSTANCES)
        return ModelThreads(plan, cores // instances, instances, 1)
    if plan == "passive":
        return ModelThreads(plan, cores, 1, 1)
    if plan == "legacy":
        return ModelThreads(plan, cores, 1, cores)
    raise ValueError(f"unknown CPU plan {plan!r}; choose one of {', '.join(PLANS)}")


def plan(towers: list[tuple[str, str]], cores: int, plan_name: str = DEFAULT_PLAN) -> dict[str, ModelThreads]:
    """Per-model settings for every (model name, tower kind) Triton will serve on `cores` cores."""
    return {name: model_threads(tower, cores, plan_name) for name, tower in towers}


def selected_plan(environ: Mapping[str, str] = os.environ) -> str:
    name = environ.get(PLAN_ENV) or DEFAULT_PLAN
    if name not in PLANS:
        raise ValueError(f"{PLAN_ENV}={name!r}: choose one of {', '.join(PLANS)}")
    return name


def _config_param(text: str, key: str) -> str | None:
    match = re.search(rf'key: "{key}" value \{{ string_value: "([^"]*)"', text)
    return match.group(1) if match else None


def repository_plans(repository: Path) -> dict[str, str]:
    """`cpu_plan` of each CPU (Python-backend) model in the repository ("legacy" if it has none)."""
    plans = {}
    for config in sorted(Path(repository).glob("*/config.pbtxt")):
        text = config.read_text()
        if 'backend: "python"' in text:
            plans[config.parent.name] = _config_param(text, "cpu_plan") or "legacy"
    return plans


def process_env(plans: Mapping[str, str], environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Variables Triton (and so every stub) starts with; a value the operator set wins."""
    if not plans or set(plans.values()) == {"legacy"}:
        return {}
    return {k: v for k, v in PASSIVE_ENV.items() if k not in environ}


def server_args(plans: Mapping[str, str]) -> list[str]:
    """tritonserver flags: the rate limiter only matters (and is only on) when a model claims cores."""
    return ["--rate-limit=execution_count"] if "shared" in plans.values() else []


def apply_to_config(text: str, settings: ModelThreads) -> str:
    """Rewrite a CPU config.pbtxt to `settings` (instance group and thread parameters), keeping the rest."""
    text = re.sub(r"^instance_group \[.*\]$", settings.instance_group(), text, count=1, flags=re.MULTILINE)
    for key, value in settings.parameters().items():
        line = f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}'
        pattern = rf'^parameters \{{ key: "{key}" value \{{ string_value: "[^"]*" \}} \}}$'
        text, found = re.subn(pattern, line, text, count=1, flags=re.MULTILINE)
        if not found:
            text = text.replace("model_warmup [", f"{line}\nmodel_warmup [", 1)
    return text


def refresh_repository(repository: Path, plan_name: str, cores: int, models: list[str] | None = None) -> list[str]:
    """Bring already-exported CPU configs to the plan (no re-export); returns the models rewritten."""
    changed = []
    for config in sorted(Path(repository).glob("*/config.pbtxt")):
        name, text = config.parent.name, config.read_text()
        if (models is not None and name not in models) or 'backend: "python"' not in text:
            continue
        new = apply_to_config(text, model_threads(_config_param(text, Param.TOWER) or "image", cores, plan_name))
        if new != text:
            tmp = config.with_suffix(".tmp")
            tmp.write_text(new)
            os.replace(tmp, config)
            changed.append(name)
    return changed


def default_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
