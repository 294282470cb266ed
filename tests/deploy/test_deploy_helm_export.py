"""Helm: the export Job schedules where Triton runs, passes Triton's image and GPU size to the export, and a
ReadWriteOnce model volume is refused with more than one Triton replica (or the Triton HPA).
"""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy.test_deploy_helm import CHART, NAMESPACE, RELEASE, one

pytestmark = pytest.mark.deploy

GPU_TAINT = [{"key": "gpu-only", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]
ZONE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-a"]}]}
            ]
        }
    }
}


def render(helm, values: dict) -> list[dict]:
    with helm.Chart.load(CHART) as chart:
        files = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [d for path, text in files.items() if path.endswith(".yaml") for d in yaml.safe_load_all(text) if d]


def job_spec(docs: list[dict]) -> dict:
    return one(docs, "Job")["spec"]["template"]["spec"]


def test_export_job_gets_tritons_placement_by_default(helm) -> None:
    triton = {
        "nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"},
        "tolerations": GPU_TAINT,
        "affinity": ZONE_AFFINITY,
    }
    docs = render(helm, {"triton": triton})
    spec, triton_spec = job_spec(docs), one(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    for key in ("nodeSelector", "tolerations", "affinity"):
        assert spec[key] == triton_spec[key] == triton[key]
    # The chart's own default (the nvidia.com/gpu toleration) travels too.
    default = job_spec(render(helm, {}))
    assert default["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_export_job_placement_can_be_overridden(helm) -> None:
    values = {
        "triton": {"tolerations": GPU_TAINT, "affinity": ZONE_AFFINITY},
        "modelRepository": {"export": {"tolerations": [], "affinity": {}, "nodeSelector": {"pool": "cpu"}}},
    }
    spec = job_spec(render(helm, values))
    assert "tolerations" not in spec and "affinity" not in spec and spec["nodeSelector"] == {"pool": "cpu"}


def test_export_job_checks_against_tritons_image_and_gpu_size(helm) -> None:
    docs = render(helm, {"triton": {"image": {"tag": "24.08-py3"}}, "clip": {"gpuMemoryGB": 24}})
    args = job_spec(docs)["containers"][0]["args"]
    assert args[args.index("--triton-image") + 1] == "nvcr.io/nvidia/tritonserver:24.08-py3"
    assert args[args.index("--gpu-memory-gb") + 1] == "24"


@pytest.mark.parametrize(
    "values",
    [
        {"triton": {"replicaCount": 2}},
        {"triton": {"autoscaling": {"enabled": True}}},
        {"triton": {"replicaCount": 3}, "modelRepository": {"pvc": {"existingClaim": "mine"}}},
        {
            "triton": {"autoscaling": {"enabled": True}},
            "modelRepository": {"pvc": {"accessModes": ["ReadWriteOncePod"]}},
        },
    ],
    ids=["replicas", "hpa", "existing-claim", "rwop-hpa"],
)
def test_read_write_once_with_several_tritons_is_refused(helm, values: dict) -> None:
    with pytest.raises(helm.HelmRenderError, match="ReadWriteOnce cannot serve more than one Triton replica"):
        render(helm, values)


@pytest.mark.parametrize(
    "values",
    [
        {"triton": {"replicaCount": 2}, "modelRepository": {"pvc": {"accessModes": ["ReadWriteMany"]}}},
        {"triton": {"autoscaling": {"enabled": True}}, "modelRepository": {"mode": "initContainer"}},
        {"triton": {"replicaCount": 1}},
    ],
    ids=["rwx", "init-container", "one-replica"],
)
def test_shareable_or_single_replica_storage_renders(helm, values: dict) -> None:
    assert one(render(helm, values), "Deployment", "triton")
