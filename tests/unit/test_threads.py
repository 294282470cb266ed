"""The CPU thread plan holds across every served tower, and the exporter and the Triton launch apply it.

Issue 14: per-tower `instances x threads <= cores` let two towers' OpenMP pools fight over the same
cores (mixed traffic at 0.27 of the single-modality rates). These tests pin the cross-tower rule, the
parsed configs the exporter writes, and the environment and flags Triton is started with.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from triton_clip import threads
from triton_clip.repository import TowerSpec, config_pbtxt, write_model
from triton_clip.server import TritonOptions, command, environment
from triton_clip.versions import model_names

TOWERS = [
    (name, tower)
    for version in ("ViT-B-32", "ViT-B-16")
    for name, tower in zip(model_names(version), ("image", "text"))
]


def spec(tower: str, settings: threads.ModelThreads | None) -> TowerSpec:
    dims = [3, 224, 224] if tower == "image" else [-1]
    return TowerSpec(f"clip-ViT-B-32-{tower}", tower, "cpu", dims, 512, {"tower": tower}, threads=settings)


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


@pytest.mark.parametrize("cores", [1, 2, 16])
def test_shared_plan_lets_one_tower_at_a_time_use_all_cores(cores: int) -> None:
    plan = threads.plan(TOWERS, cores, "shared")
    assert set(plan) == {name for name, _ in TOWERS}
    for name, settings in plan.items():
        assert settings.num_threads == cores and settings.instances == 1 and settings.interop_threads == 1
        # Every instance claims all of the global resource: Triton runs exactly one execution at a time,
        # so at most `cores` torch threads compute at once however many towers and versions are served.
        assert settings.resource == cores
    texts = {plan[n].priority for n, t in TOWERS if t == "text"}
    images = {plan[n].priority for n, t in TOWERS if t == "image"}
    assert max(texts) < min(images)  # short texts are scheduled before queued image batches


@pytest.mark.parametrize(("cores", "expected"), [(1, (1, 1)), (2, (1, 2)), (4, (1, 4)), (16, (4, 4))])
def test_default_plan_splits_each_tower_into_single_threaded_instances(cores: int, expected: tuple) -> None:
    assert threads.DEFAULT_PLAN == "split"
    for settings in threads.plan(TOWERS, cores).values():
        assert (settings.num_threads, settings.instances) == expected
        assert settings.num_threads * settings.instances <= cores  # alone, a tower still uses every core
        assert settings.interop_threads == 1 and settings.resource == 0  # no rate limiter
    # ...and any pool that does exist (more cores than instances) sleeps when it waits:
    assert threads.process_env({"m": "split"}, {}) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_passive_plan_gives_each_tower_the_cores_in_one_instance() -> None:
    for settings in threads.plan(TOWERS, 2, "passive").values():
        assert (settings.num_threads, settings.instances, settings.resource) == (2, 1, 0)


def test_unknown_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown CPU plan"):
        threads.model_threads("image", 2, "turbo")
    with pytest.raises(ValueError, match=threads.PLAN_ENV):
        threads.selected_plan({threads.PLAN_ENV: "turbo"})
    assert threads.selected_plan({}) == threads.DEFAULT_PLAN


@pytest.mark.parametrize("tower", ["image", "text"])
def test_exported_cpu_config_carries_the_plan(tower: str) -> None:
    settings = threads.model_threads(tower, 2, "shared")
    config = parse(config_pbtxt(spec(tower, settings)))
    (group,) = config.instance_group
    assert group.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU and group.count == 1
    (resource,) = group.rate_limiter.resources
    assert (resource.name, resource.count, getattr(resource, "global")) == (threads.RESOURCE, 2, True)
    assert group.rate_limiter.priority == threads.PRIORITY[tower]
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert (params["cpu_plan"], params["num_threads"], params["interop_threads"]) == ("shared", "2", "1")


@pytest.mark.parametrize("plan_name", threads.PLANS)
def test_refresh_rewrites_an_old_config_to_what_the_exporter_writes(plan_name: str, tmp_path: Path) -> None:
    old = config_pbtxt(spec("text", None))  # a repository exported before the plan existed
    settings = threads.model_threads("text", 2, plan_name)
    assert parse(threads.apply_to_config(old, settings)) == parse(config_pbtxt(spec("text", settings)))


def _repository(tmp_path: Path, plan_name: str | None) -> Path:
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"not a model: only the configs are read")
    for name, tower in TOWERS[:2]:
        settings = threads.model_threads(tower, 2, plan_name) if plan_name else None
        write_model(tmp_path / "repo" / name, spec(tower, settings), model_file)
    return tmp_path / "repo"


@pytest.mark.parametrize("plan_name", ["passive", "shared", "split"])
def test_triton_launch_applies_the_plan(plan_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    repo = _repository(tmp_path, plan_name)
    assert set(threads.repository_plans(repo).values()) == {plan_name}
    assert environment(repository=repo)["OMP_WAIT_POLICY"] == "PASSIVE"
    limited = "--rate-limit=execution_count" in command(TritonOptions(repo))
    assert limited == (plan_name == "shared")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # an operator's explicit choice wins
    assert environment(repository=repo)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_legacy_repository_starts_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    repo = _repository(tmp_path, None)
    assert set(threads.repository_plans(repo).values()) == {"legacy"}
    assert "OMP_WAIT_POLICY" not in environment(repository=repo)
    assert not any(arg.startswith("--rate-limit") for arg in command(TritonOptions(repo)))
    assert threads.refresh_repository(repo, "shared", 2) == [name for name, _ in TOWERS[:2]]
    assert "--rate-limit=execution_count" in command(TritonOptions(repo))
    assert threads.refresh_repository(repo, "shared", 2) == []  # idempotent
