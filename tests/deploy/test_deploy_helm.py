"""deploy/helm/clip-triton: strict lint, renders for several value sets, kubernetes-validate --strict on every
rendered manifest for Kubernetes 1.29 and 1.33 (any WARN or ERROR line fails), schema rejections.

ServiceMonitor, PodMonitor and PrometheusRule are CRDs that kubernetes-validate has no schema for: their
structure (and that they select what the chart renders) is asserted here instead.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml


pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "clip-triton"
RELEASE, NAMESPACE = "clip", "ml"
KUBE_VERSIONS = ["1.29.0", "1.33.0"]
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}

VALUE_SETS: dict[str, dict] = {
    "default": {},
    "autoscaling": {
        "triton": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}},
        "gateway": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}},
        "modelRepository": {"pvc": {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs"}},
    },
    "monitoring": {
        "monitoring": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "podMonitor": {"enabled": True, "interval": "30s"},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
        },
    },
    "networkpolicy": {"networkPolicy": {"enabled": True}},
    "initcontainer": {
        "clip": {"versions": ["ViT-B-16", "ViT-B-32"], "fp16": True},
        "modelRepository": {"mode": "initContainer", "initContainer": {"cacheClaim": "clip-weights"}},
        "gateway": {
            "autoscaling": {"enabled": False},
            "replicaCount": 3,
            "apiKeys": {"keys": ["key-one-123456", "key-two-123456"]},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "tls": [{"secretName": "clip-tls", "hosts": ["clip.example.com"]}],
            },
            "extraConfig": {"GATEWAY_TRITON_TIMEOUT_S": "20"},
        },
        "triton": {"service": {"ports": {"grpc": 18001}}, "containerPorts": {"grpc": 9101}, "gpus": 2},
    },
    "everything": {
        "fullnameOverride": "clip",
        "clip": {"versions": ["ViT-L-14"], "pretrained": "laion2b_s32b_b82k"},
        "modelRepository": {
            "pvc": {"existingClaim": "models-rwx", "accessModes": ["ReadWriteMany"]},
            "export": {"ttlSecondsAfterFinished": 3600},
        },
        "triton": {
            "autoscaling": {"enabled": True},
            "runtimeClassName": "nvidia",
            "extraArgs": ["--model-control-mode=none"],
        },
        "gateway": {
            "config": {"defaultVersion": "ViT-L-14"},
            "apiKeys": {"existingSecret": "clip-api-keys", "existingSecretKey": "keys"},
            "ingress": {"enabled": True},
        },
        "monitoring": {
            "serviceMonitor": {"enabled": True},
            "podMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
        },
        "networkPolicy": {"enabled": True},
    },
}


@pytest.fixture(scope="module")
def renders(helm) -> dict[str, dict[str, str]]:
    """Every value set rendered once: {set: {template path: text}}."""
    out = {}
    with helm.Chart.load(CHART) as chart:
        for name, values in VALUE_SETS.items():
            out[name] = chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    return out


@pytest.fixture(scope="module")
def manifests(renders) -> dict[str, list[dict]]:
    """Parsed Kubernetes objects per value set (NOTES.txt left out)."""
    return {
        name: [
            doc
            for path, text in files.items()
            if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text)
            if doc
        ]
        for name, files in renders.items()
    }


def objects(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict], kind: str, component: str | None = None) -> dict:
    found = [
        d
        for d in objects(docs, kind)
        if component is None or d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"expected one {kind} {component or ''}, got {len(found)}"
    return found[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"] if obj["kind"] in ("Deployment", "Job") else obj["spec"]


def containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec["containers"]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


# --- lint -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint_strict(helm, value_set, kube_version):
    report = helm.lint(
        CHART, copy.deepcopy(VALUE_SETS[value_set]), strict=True, namespace=NAMESPACE, kube_version=f"v{kube_version}"
    )
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error; 1 is info
    assert problems == []


# --- kubernetes-validate --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_manifests_validate_strict(kube_validate, manifests, value_set, kube_version):
    docs = [d for d in manifests[value_set] if d["kind"] not in CRD_KINDS]
    assert docs
    failures = []
    for doc in docs:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            rc = kube_validate.validate_resource(doc, value_set, kube_version, True, False, False)
        lines = buffer.getvalue().splitlines()
        bad = [line for line in lines if line.startswith(("WARN", "ERROR", "FATAL"))]
        if rc or bad or not lines:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: rc={rc} {bad}")
    assert not failures, "\n".join(failures)


def test_cli_validates_the_default_render(kube_validate_cli, renders, tmp_path):
    """The documented command line, end to end: `kubernetes-validate --strict -k 1.29.0 -k 1.33.0 FILE`."""
    path = tmp_path / "default.yaml"
    path.write_text("\n---\n".join(t for p, t in renders["default"].items() if p.endswith(".yaml") and t.strip()))
    proc = subprocess.run(
        [str(kube_validate_cli), "--strict", *[a for v in KUBE_VERSIONS for a in ("-k", v)], str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [line for line in lines if line.startswith(("WARN", "ERROR", "FATAL"))]
    assert sum(line.startswith("INFO") for line in lines) >= 2 * 10


@pytest.mark.parametrize(
    ("mutate", "prefix"),
    [
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(gpus=1), "ERROR"),
        (lambda d: d.update(apiVersion="extensions/v1beta1"), "WARN"),
    ],
    ids=["unknown-field", "removed-api"],
)
def test_validator_flags_what_the_rule_counts(kube_validate, manifests, mutate, prefix):
    """The checks bite: an unknown field is an ERROR, a removed API version only a WARN (exit 0)."""
    doc = copy.deepcopy(one(manifests["default"], "Deployment", "triton"))
    mutate(doc)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        kube_validate.validate_resource(doc, "mutated", "1.29.0", True, False, False)
    assert buffer.getvalue().startswith(prefix)


# --- what is rendered ------------------------------------------------------------------------------------------


def test_default_objects(manifests):
    kinds = sorted(d["kind"] for d in manifests["default"])
    assert kinds == sorted(
        [
            "ServiceAccount",
            "PersistentVolumeClaim",
            "Job",
            "ConfigMap",
            "Deployment",
            "Deployment",
            "Service",
            "Service",
            "Service",
            "PodDisruptionBudget",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Pod",
        ]
    )
    hpa = one(manifests["default"], "HorizontalPodAutoscaler")
    assert hpa["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_gateway_round_robins_over_triton_pods_through_a_headless_service(manifests, value_set):
    """GATEWAY_TRITON_URL = dns:///<headless gRPC Service>:<container grpc port>: every Triton pod's address.

    A headless Service's clients connect to the pods themselves, so the port is the container's, not the
    normal Service's; the normal Service keeps HTTP and metrics (and grpc for other clients).
    """
    docs = manifests[value_set]
    config = one(docs, "ConfigMap", "gateway")["data"]
    target = config["GATEWAY_TRITON_URL"]
    assert target.startswith("dns:///"), target
    host, port = target.removeprefix("dns:///").rsplit(":", 1)
    headless = one(docs, "Service", "triton-grpc")
    assert host == headless["metadata"]["name"] and headless["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in headless["spec"]["ports"]] == ["grpc"]
    triton = one(docs, "Deployment", "triton")
    assert selects({"matchLabels": headless["spec"]["selector"]}, triton["spec"]["template"]["metadata"]["labels"])
    container = next(c for c in triton["spec"]["template"]["spec"]["containers"] if c["name"] == "triton")
    container_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    assert int(port) == container_port == headless["spec"]["ports"][0]["port"]
    assert f"--grpc-port={container_port}" in container["args"]
    normal = one(docs, "Service", "triton")
    assert normal["spec"].get("clusterIP") != "None"
    assert {"http", "metrics"} <= {p["name"] for p in normal["spec"]["ports"]}
    assert int(config["GATEWAY_WORKERS"]) >= 1


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_services_select_their_pods(manifests, value_set):
    docs = manifests[value_set]
    for component in ("triton", "gateway"):
        service = one(docs, "Service", component)
        deployment = one(docs, "Deployment", component)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"], pod_labels)
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels)
        port_names = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    for pdb in objects(docs, "PodDisruptionBudget"):
        component = pdb["metadata"]["labels"]["app.kubernetes.io/component"]
        deployment = one(docs, "Deployment", component)
        assert selects(pdb["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_triton_pod(manifests, value_set):
    values = VALUE_SETS[value_set]
    triton = one(manifests[value_set], "Deployment", "triton")
    spec = triton["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "triton")
    gpus = str(values.get("triton", {}).get("gpus", 1))
    assert str(container["resources"]["limits"]["nvidia.com/gpu"]) == gpus
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:") and container["image"].endswith("-py3")
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert "command" not in container and container["args"][0] == "tritonserver"  # keep NVIDIA's entrypoint
    for flag in (
        "--model-repository=/models/repository",
        "--strict-readiness=true",
        "--disable-auto-complete-config",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
    ):
        assert flag in container["args"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["dshm"]["mountPath"] == "/dev/shm"
    assert mounts["models"]["readOnly"] is True
    autoscaled = values.get("triton", {}).get("autoscaling", {}).get("enabled", False)
    assert ("replicas" in triton["spec"]) is not autoscaled


@pytest.mark.parametrize("value_set", ["default", "everything"])
def test_pvc_mode_export_job_and_marker(manifests, value_set):
    docs = manifests[value_set]
    job = one(docs, "Job")
    triton = one(docs, "Deployment", "triton")
    claim = triton["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    job_claim = job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert job_claim == claim["claimName"]
    pvcs = objects(docs, "PersistentVolumeClaim")
    existing = VALUE_SETS[value_set].get("modelRepository", {}).get("pvc", {}).get("existingClaim")
    if existing:
        assert not pvcs and claim["claimName"] == existing
    else:
        assert [p["metadata"]["name"] for p in pvcs] == [claim["claimName"]]
        assert pvcs[0]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # The marker the Job leaves is the one Triton's init container waits for.
    export = job["spec"]["template"]["spec"]["containers"][0]
    marker = export["command"][2].rsplit("touch ", 1)[1]
    wait = triton["spec"]["template"]["spec"]["initContainers"][0]
    assert wait["name"] == "wait-for-export" and f"[ -f {marker} ]" in wait["command"][2]
    assert job["metadata"]["name"].endswith(marker.split(".export-")[1].split(".")[0])
    args = export["args"]
    assert args[args.index("--target") + 1] == "gpu"
    assert args[args.index("--repository") + 1] == "/models/repository"
    versions = VALUE_SETS[value_set].get("clip", {}).get("versions", ["ViT-B-16"])
    assert args[args.index("--versions") + 1] == ",".join(versions)


def test_export_digest_follows_the_versions(manifests):
    a = one(manifests["default"], "Job")["metadata"]["name"]
    b = one(manifests["everything"], "Job")["metadata"]["name"]
    assert a.rsplit("-", 1)[1] != b.rsplit("-", 1)[1]


def test_init_container_mode(manifests):
    docs = manifests["initcontainer"]
    assert not objects(docs, "Job") and not objects(docs, "PersistentVolumeClaim")
    spec = one(docs, "Deployment", "triton")["spec"]["template"]["spec"]
    init = spec["initContainers"][0]
    assert init["name"] == "export" and init["image"].startswith("clip-triton/export:")
    assert init["args"][init["args"].index("--versions") + 1] == "ViT-B-16,ViT-B-32"
    assert "--fp16" in init["args"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["models"]
    assert volumes["cache"]["persistentVolumeClaim"]["claimName"] == "clip-weights"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_gateway_pod(manifests, value_set):
    docs = manifests[value_set]
    gateway = one(docs, "Deployment", "gateway")
    spec = gateway["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert "torch" not in json.dumps(container)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readiness"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["envFrom"][0]["configMapRef"]["name"] == one(docs, "ConfigMap", "gateway")["metadata"]["name"]
    port = next(p for p in container["ports"] if p["name"] == "http")["containerPort"]
    assert container["command"][-1] == str(port)


def test_gateway_settings_come_from_values(manifests):
    data = one(manifests["initcontainer"], "ConfigMap", "gateway")["data"]
    assert data["CLIP_VERSION_ID"] == "ViT-B-16"
    assert data["GATEWAY_MAX_BODY_BYTES"] == "33554432"  # not 3.3554432e+07
    assert data["GATEWAY_TRITON_TIMEOUT_S"] == "20"
    assert data["ALLOW_URL_TO_NON_GLOBAL_ADDRESSES"] == "false"
    assert all(isinstance(v, str) for v in data.values())


@pytest.mark.parametrize(
    ("value_set", "secret_name", "key"),
    [("initcontainer", "clip-clip-triton-gateway-api-keys", "api-keys"), ("everything", "clip-api-keys", "keys")],
)
def test_api_keys_are_a_mounted_secret(manifests, value_set, secret_name, key):
    docs = manifests[value_set]
    container = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    volumes = one(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["volumes"]
    secret_volume = next(v for v in volumes if "secret" in v)
    assert secret_volume["secret"]["secretName"] == secret_name
    mount = next(m for m in container["volumeMounts"] if m["name"] == secret_volume["name"])
    assert env["GATEWAY_API_KEYS_FILE"] == f"{mount['mountPath']}/{key}"
    created = objects(docs, "Secret")
    if value_set == "everything":
        assert not created  # existing Secret: the chart creates none
    else:
        import base64

        assert base64.b64decode(created[0]["data"][key]).decode().split() == ["key-one-123456", "key-two-123456"]
    assert "GATEWAY_API_KEYS" not in one(docs, "ConfigMap", "gateway")["data"]


def test_no_auth_by_default(manifests):
    container = one(manifests["default"], "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    assert "GATEWAY_API_KEYS_FILE" not in json.dumps(container)


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_container_has_requests_limits_and_a_pinned_image(manifests, value_set):
    for obj in manifests[value_set]:
        if obj["kind"] not in ("Deployment", "Job", "Pod"):
            continue
        for container in containers(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][section]), where
            tag = container["image"].rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False


def test_autoscaling(manifests):
    docs = manifests["autoscaling"]
    hpas = {h["metadata"]["labels"]["app.kubernetes.io/component"]: h for h in objects(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {"gateway", "triton"}
    assert all(h["apiVersion"] == "autoscaling/v2" for h in hpas.values())
    triton = hpas["triton"]["spec"]
    assert triton["scaleTargetRef"]["name"] == one(docs, "Deployment", "triton")["metadata"]["name"]
    assert triton["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "triton_queue_compute_ratio"},
                "target": {"type": "AverageValue", "averageValue": "1"},
            },
        }
    ]
    gateway = hpas["gateway"]["spec"]
    assert gateway["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in one(docs, "Deployment", "gateway")["spec"]
    assert "replicas" not in one(docs, "Deployment", "triton")["spec"]


def test_triton_autoscaling_rule_is_documented():
    values = (CHART / "values.yaml").read_text()
    for fragment in (
        "prometheus-adapter",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "as: triton_queue_compute_ratio",
    ):
        assert fragment in values


def test_network_policy_lets_only_the_gateway_reach_triton(manifests):
    docs = manifests["networkpolicy"]
    policy = one(docs, "NetworkPolicy")
    triton = one(docs, "Deployment", "triton")
    gateway = one(docs, "Deployment", "gateway")
    assert selects(policy["spec"]["podSelector"], triton["spec"]["template"]["metadata"]["labels"])
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    serving, metrics = policy["spec"]["ingress"]
    assert len(serving["from"]) == 1
    assert selects(serving["from"][0]["podSelector"], gateway["spec"]["template"]["metadata"]["labels"])
    assert not selects(serving["from"][0]["podSelector"], triton["spec"]["template"]["metadata"]["labels"])
    assert {p["port"] for p in serving["ports"]} == {"grpc", "http"}
    assert [p["port"] for p in metrics["ports"]] == ["metrics"]
    named = {p["name"] for p in triton["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {"grpc", "http", "metrics"} <= named
    assert not objects(manifests["default"], "NetworkPolicy")


def test_ingress(manifests):
    ingress = one(manifests["initcontainer"], "Ingress")
    service = one(manifests["initcontainer"], "Service", "gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["number"] == service["spec"]["ports"][0]["port"]
    assert ingress["spec"]["ingressClassName"] == "nginx" and ingress["spec"]["tls"][0]["secretName"] == "clip-tls"


# --- CRDs: no schema in kubernetes-validate, so their structure is asserted --------------------------------------


@pytest.mark.parametrize("value_set", ["monitoring", "everything"])
def test_service_and_pod_monitors(manifests, value_set):
    docs = manifests[value_set]
    expected_port = {"triton": "metrics", "gateway": "http"}
    for component, port in expected_port.items():
        service = one(docs, "Service", component)
        deployment = one(docs, "Deployment", component)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        service_monitor = one(docs, "ServiceMonitor", component)
        pod_monitor = one(docs, "PodMonitor", component)
        for monitor in (service_monitor, pod_monitor):
            assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
            assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
            assert monitor["metadata"]["namespace"] == NAMESPACE
            assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        assert selects(service_monitor["spec"]["selector"], service["metadata"]["labels"])
        (endpoint,) = service_monitor["spec"]["endpoints"]
        assert endpoint["port"] == port and endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics"
        assert selects(pod_monitor["spec"]["selector"], pod_labels)
        (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
        container_ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert pod_endpoint["port"] == port and pod_endpoint["port"] in container_ports
        for ep in (endpoint, pod_endpoint):
            assert set(ep) <= {"port", "path", "interval", "scrapeTimeout"}
    if value_set == "monitoring":
        assert one(docs, "ServiceMonitor", "triton")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert one(docs, "PodMonitor", "triton")["spec"]["podMetricsEndpoints"][0]["interval"] == "30s"


@pytest.mark.parametrize("value_set", ["monitoring", "everything"])
def test_prometheus_rule(manifests, value_set):
    rule = one(manifests[value_set], "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    records = {r["record"]: r["expr"] for r in group["rules"]}
    assert set(records) == {"triton:queue_compute:ratio", "triton:batch_size:avg"}
    assert "nv_inference_queue_duration_us" in records["triton:queue_compute:ratio"]
    assert "nv_inference_compute_infer_duration_us" in records["triton:queue_compute:ratio"]
    assert all(set(r) == {"record", "expr"} for r in group["rules"])


def test_grafana_dashboard_configmap_carries_the_dashboard_file(manifests):
    config_map = next(d for d in objects(manifests["monitoring"], "ConfigMap") if "clip-triton.json" in d["data"])
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = CHART / "files" / "dashboards" / "clip-triton.json"
    assert json.loads(config_map["data"]["clip-triton.json"]) == json.loads(dashboard.read_text())


def test_monitoring_is_off_by_default(manifests):
    assert not [d for d in manifests["default"] if d["kind"] in CRD_KINDS]


def test_notes(renders):
    notes = renders["default"]["clip-triton/templates/NOTES.txt"]
    assert "port-forward svc/clip-clip-triton-gateway 9001:9001" in notes
    assert "Authentication is OFF" in notes
    assert "custom.metrics.k8s.io" in renders["autoscaling"]["clip-triton/templates/NOTES.txt"]


# --- values.schema.json ---------------------------------------------------------------------------------------

BAD_VALUES = {
    "string-replica-count": {"triton": {"replicaCount": "2"}},
    "negative-gpus": {"triton": {"gpus": -1}},
    "latest-tag": {"triton": {"image": {"tag": "latest"}}},
    "unknown-top-level-key": {"gatway": {"replicaCount": 2}},
    "unknown-nested-key": {"gateway": {"config": {"maxBatch": 8}}},
    "bad-mode": {"modelRepository": {"mode": "nfs"}},
    "no-versions": {"clip": {"versions": []}},
    "body-size-as-string": {"gateway": {"config": {"maxBodyBytes": "32MB"}}},
    "cpu-target-over-100": {"gateway": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}},
    "port-out-of-range": {"triton": {"service": {"ports": {"grpc": 70000}}}},
    "api-key-with-comma": {"gateway": {"apiKeys": {"keys": ["aaaaaaaa,bbbbbbbb"]}}},
    "bad-log-level": {"gateway": {"config": {"logLevel": "LOUD"}}},
    "bad-quantity": {"triton": {"shmSize": "one gig"}},
}


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_schema_rejects_bad_values(helm, bad):
    values = BAD_VALUES[bad]
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(copy.deepcopy(values))
        with pytest.raises(helm.HelmError):
            chart.render(copy.deepcopy(values), name=RELEASE, namespace=NAMESPACE, is_install=True)
    report = helm.lint(CHART, copy.deepcopy(values), strict=True)
    assert report["errors"], f"lint accepted {values}"


def test_schema_accepts_every_value_set(helm):
    with helm.Chart.load(CHART) as chart:
        for values in VALUE_SETS.values():
            chart.validate_schema(copy.deepcopy(values))


def test_default_version_must_be_served(helm):
    """A rule JSON Schema cannot state: the gateway's default version must be one of the exported ones."""
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmRenderError, match="defaultVersion"):
            chart.render({"gateway": {"config": {"defaultVersion": "ViT-L-14"}}}, name=RELEASE, namespace=NAMESPACE)
