"""What the GPU benchmark measures and how long each phase may take: the GPU plan and the CPU dry-run plan.

Every phase has a budget in seconds; the runner (clipbench/gpu/bench.py) skips what is left of a phase once its
budget is spent, and a whole phase once the run's deadline is near, so one command stays within `DEADLINE_S`.
Standard library only (the tests check the budget without torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DEADLINE_S = 480  # issue 13 part 3: one command of at most 8 minutes on the GPU machine
STOP_S = 20  # stopping Triton (TritonProcess.stop's limit) happens between phases: the budgets leave it room
# Order matters: it is the order the phases run in (bootstrap runs before the bench process starts).
PHASES = ("bootstrap", "export", "model_only", "parity", "triton", "gateway", "mixed", "report")


@dataclass(frozen=True)
class GatewayConfig:
    """One gateway start: worker processes, image transport, and the concurrency levels measured on it."""

    workers: int
    transport: str  # GATEWAY_IMAGE_TRANSPORT: tensor | encoded
    image_levels: tuple[int, ...]
    text_levels: tuple[int, ...] = ()  # the text path does not depend on the image transport


@dataclass(frozen=True)
class Plan:
    device: str  # cuda | cpu (the dry run)
    versions: tuple[str, ...]  # exported and measured model-only; the first one is served end to end
    fp16: bool
    batches: tuple[int, ...]  # model-only batch sizes
    text_towers: tuple[str, ...]  # versions whose text tower is measured model-only
    model_point_s: float
    gateways: tuple[GatewayConfig, ...]
    point_s: float  # one gateway point (wrk's -d rounds to whole seconds, at least 1)
    mixed_concurrency: int
    mixed_flood: int
    mixed_point_s: float
    parity_model: str
    budgets: dict[str, float] = field(default_factory=dict)
    model_configs: tuple[str, ...] = ()  # extra open_clip configs (the dry run's tiny model)
    pretrained: str = "none"  # random init: speed equals the real weights'

    @property
    def total_budget_s(self) -> float:
        return sum(self.budgets.values())

    @property
    def served_version(self) -> str:
        return self.versions[0]

    def gateway_points(self) -> int:
        return sum(len(g.image_levels) + len(g.text_levels) for g in self.gateways)


LEVELS = (1, 8, 32, 128, 256)
GPU_PLAN = Plan(
    device="cuda",
    versions=("ViT-B-32", "ViT-B-16"),
    fp16=True,
    batches=(1, 8, 32, 64, 128, 256),
    text_towers=("ViT-B-32",),  # ViT-B-16's text tower is the same architecture (width 512, 12 layers)
    model_point_s=1.0,
    gateways=(
        GatewayConfig(8, "tensor", LEVELS, LEVELS),
        GatewayConfig(8, "encoded", LEVELS),
        GatewayConfig(1, "tensor", (32, 256), (32, 256)),
        GatewayConfig(1, "encoded", (32, 256)),
    ),
    point_s=2.0,
    mixed_concurrency=64,
    mixed_flood=256,
    mixed_point_s=3.0,
    parity_model="ViT-B-32",
    budgets={
        "bootstrap": 30,
        "export": 100,
        "model_only": 60,
        "parity": 30,
        "triton": 60,
        "gateway": 110,
        "mixed": 50,
        "report": 10,
    },
)

CPU_PLAN = replace(
    GPU_PLAN,
    device="cpu",
    versions=("clip-tiny",),
    fp16=False,
    batches=(1, 4),
    text_towers=("clip-tiny",),
    model_point_s=0.5,
    gateways=(GatewayConfig(2, "tensor", (1, 4), (1, 4)), GatewayConfig(1, "encoded", (4,))),
    point_s=1.0,
    mixed_concurrency=4,
    mixed_flood=8,
    mixed_point_s=1.0,
    model_configs=("tests/fixtures/clip-tiny.json",),
    budgets={**GPU_PLAN.budgets, "export": 120, "parity": 90, "triton": 120, "gateway": 120, "mixed": 90},
)


def plan_for(device: str, point_s: float | None = None, workers: int | None = None) -> Plan:
    """The plan for `device`, with the command line's overrides of the point length and the many-workers count."""
    plan = GPU_PLAN if device == "cuda" else CPU_PLAN
    if point_s:
        plan = replace(plan, point_s=point_s, mixed_point_s=point_s)
    if workers:
        many = max(g.workers for g in plan.gateways)
        plan = replace(
            plan, gateways=tuple(replace(g, workers=workers) if g.workers == many else g for g in plan.gateways)
        )
    return plan


def estimate_s(plan: Plan, start_s: float = 6.0, warm_s: float = 1.0) -> dict[str, float]:
    """Seconds the point-driven phases need at least (points + gateway starts), to check against the budgets."""
    model = len(plan.batches) * (len(plan.versions) + len(plan.text_towers)) * (plan.model_point_s + 0.3)
    gateway = plan.gateway_points() * (max(1.0, round(plan.point_s)) + 0.3) + len(plan.gateways) * (start_s + warm_s)
    mixed_scenarios = 6 if plan.mixed_flood else 4  # mixed/run.py `scenarios` with compare
    mixed = mixed_scenarios * (max(1.0, round(plan.mixed_point_s)) + 0.3) + start_s + 3 * warm_s
    return {"model_only": model, "gateway": gateway, "mixed": mixed}
