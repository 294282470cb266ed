"""docker-compose.yml, rendered by the real Compose v2 binary for the default and every profile."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml


pytestmark = pytest.mark.deploy

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DASHBOARD = REPO / "deploy" / "helm" / "clip-triton" / "files" / "dashboards" / "clip-triton.json"

PROFILES = {
    "default": (),
    "monitoring": ("monitoring",),
    "loadtest": ("loadtest",),
    "cpu": ("cpu",),
    "all": ("monitoring", "loadtest", "cpu"),
}
SERVICES = {
    "default": {"export", "triton", "gateway"},
    "monitoring": {"export", "triton", "gateway", "prometheus", "grafana"},
    "loadtest": {"export", "triton", "gateway", "locust"},
    "cpu": {"export", "triton", "gateway", "triton-cpu", "gateway-cpu"},
    "all": {"export", "triton", "gateway", "prometheus", "grafana", "locust", "triton-cpu", "gateway-cpu"},
}
GATEWAYS = {"gateway": "triton", "gateway-cpu": "triton-cpu"}
TRITON_GRPC_PORT = 8001


@pytest.fixture(scope="module")
def rendered(compose_config) -> dict[str, dict]:
    return {name: compose_config(profiles) for name, profiles in PROFILES.items()}


@pytest.fixture(scope="module")
def full(rendered) -> dict:
    return rendered["all"]["services"]


@pytest.mark.parametrize("profile", PROFILES)
def test_config_quiet_exits_zero(compose_run, profile):
    proc = compose_run("config", "--quiet", profiles=PROFILES[profile])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", f"compose printed warnings: {proc.stderr}"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_services(rendered, profile):
    assert set(rendered[profile]["services"]) == SERVICES[profile]


@pytest.mark.parametrize(
    "broken",
    [
        ("count: ${TRITON_GPU_COUNT:-1}", "count: one"),
        ("condition: service_completed_successfully", "condition: service_finished"),
        ("      export:\n        condition", "      exporter:\n        condition"),
    ],
    ids=["gpu-count", "depends-on-condition", "undefined-dependency"],
)
def test_binary_rejects_a_broken_file(compose_run, tmp_path, broken):
    """The exit code really is checked: a broken copy of the file fails `config --quiet`."""
    old, new = broken
    text = COMPOSE_FILE.read_text()
    assert old in text
    (tmp_path / "docker-compose.yml").write_text(text.replace(old, new, 1))
    proc = compose_run("config", "--quiet", file=tmp_path / "docker-compose.yml")
    assert proc.returncode != 0


def test_env_example_renders_every_profile(compose_config):
    model = compose_config(PROFILES["all"], env_file=REPO / ".env.example")
    env = model["services"]["export"]["environment"]
    assert env["CLIP_VERSIONS"] == "ViT-B-16" and env["CLIP_PRETRAINED"] == "openai"


def _compose_variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))


def _env_example_variables() -> set[str]:
    names = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def test_env_example_documents_every_variable():
    missing = _compose_variables() - _env_example_variables()
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_has_no_stale_variables():
    stale = _env_example_variables() - _compose_variables()
    assert not stale, f".env.example documents variables docker-compose.yml never reads: {sorted(stale)}"


def test_env_example_defaults_match_compose_defaults():
    """The value shown in .env.example is the default in docker-compose.yml."""
    defaults = dict(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-([^}]*)\}", COMPOSE_FILE.read_text()))
    documented = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            documented[match.group(1)] = match.group(2)
    wrong = {k: (documented[k], v) for k, v in defaults.items() if k in documented and documented[k] != v}
    assert not wrong, f"(.env.example, compose default) differ: {wrong}"


# --- Triton ---------------------------------------------------------------------------------------------------


def test_triton_gpu_reservation(rendered):
    triton = rendered["default"]["services"]["triton"]
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


@pytest.mark.parametrize(("value", "count"), [("all", -1), ("2", 2)])
def test_triton_gpu_count_is_configurable(compose_config, value, count):
    model = compose_config((), env={"TRITON_GPU_COUNT": value})
    device = model["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["count"] == count  # compose encodes `all` as -1


def test_triton_runtime_settings(rendered):
    triton = rendered["default"]["services"]["triton"]
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d{2}\.\d{2}-py3", triton["image"])
    assert int(triton["shm_size"]) >= 1 << 30
    assert triton["ulimits"] == {"memlock": -1, "stack": 67108864}
    assert triton["restart"] == "unless-stopped"
    command = triton["command"]
    assert command[0] == "tritonserver"
    for flag in (
        "--strict-readiness=true",
        "--disable-auto-complete-config",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
        "--exit-on-error=true",
    ):
        assert flag in command


def test_triton_ports_bound_to_loopback(rendered):
    ports = rendered["default"]["services"]["triton"]["ports"]
    assert {p["target"] for p in ports} == {8000, 8001, 8002}
    assert all(p["host_ip"] == "127.0.0.1" for p in ports)


def test_model_repository_flows_from_export_to_triton(rendered):
    """export writes <volume>/repository, Triton reads the same volume, read-only, at the same path."""
    services = rendered["default"]["services"]
    export, triton = services["export"], services["triton"]
    repo_arg = export["command"][export["command"].index("--repository") + 1]
    assert export["command"][export["command"].index("--target") + 1] == "gpu"
    served = next(a.split("=", 1)[1] for a in triton["command"] if a.startswith("--model-repository="))
    assert served == repo_arg

    def mount(service, path):
        return next(v for v in service["volumes"] if path == v["target"] or path.startswith(v["target"] + "/"))

    export_mount, triton_mount = mount(export, repo_arg), mount(triton, served)
    assert export_mount["type"] == triton_mount["type"] == "volume"
    assert export_mount["source"] == triton_mount["source"]
    assert triton_mount.get("read_only") is True and not export_mount.get("read_only")


def test_export_is_one_shot_and_cached(rendered, compose_config):
    export = rendered["default"]["services"]["export"]
    assert export["restart"] == "no"
    assert any(v["target"] == "/cache" and v["type"] == "volume" for v in export["volumes"])
    assert export["environment"]["HF_HOME"].startswith("/cache")
    model = compose_config(
        (), env={"CLIP_VERSIONS": "ViT-B-32,ViT-L-14", "CLIP_PRETRAINED": "none", "CLIP_EXPORT_EXTRA_ARGS": "--fp16"}
    )
    export = model["services"]["export"]
    assert export["environment"]["CLIP_VERSIONS"] == "ViT-B-32,ViT-L-14"
    assert export["environment"]["CLIP_PRETRAINED"] == "none"
    assert export["command"][-1] == "--fp16"


# --- dependencies, health, addresses --------------------------------------------------------------------------

EXPECTED_DEPENDS = {
    "triton": {"export": "service_completed_successfully"},
    "gateway": {"triton": "service_healthy"},
    "gateway-cpu": {"triton-cpu": "service_healthy"},
    "grafana": {"prometheus": "service_healthy"},
    "locust": {"gateway": "service_healthy"},
}


@pytest.mark.parametrize("service", EXPECTED_DEPENDS)
def test_depends_on_conditions(full, service):
    depends = {name: spec["condition"] for name, spec in full[service]["depends_on"].items()}
    assert depends == EXPECTED_DEPENDS[service]


HEALTH_PATHS = {
    "triton": "/v2/health/ready",
    "triton-cpu": "/v2/health/ready",
    "gateway": "/readiness",
    "gateway-cpu": "/readiness",
    "prometheus": "/-/ready",
    "grafana": "/api/health",
}


@pytest.mark.parametrize("service", HEALTH_PATHS)
def test_healthchecks(full, service):
    check = full[service]["healthcheck"]
    assert not check.get("disable", False)
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert any(HEALTH_PATHS[service] in part for part in check["test"]), check["test"]
    assert check["retries"] >= 1 and check["interval"] and check["timeout"]


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(full):
    one_shot = {"export", "locust"}
    for name, service in full.items():
        if name in one_shot:
            assert service.get("restart") == "no", name
            continue
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_gateway_triton_address_matches_triton_service(full, gateway):
    host, port = full[gateway]["environment"]["GATEWAY_TRITON_URL"].rsplit(":", 1)
    assert host == GATEWAYS[gateway] and host in full
    assert int(port) == TRITON_GRPC_PORT
    assert TRITON_GRPC_PORT in {p["target"] for p in full[host]["ports"]}
    assert "service_healthy" == full[gateway]["depends_on"][host]["condition"]


def test_triton_grpc_port_matches_the_servers(full):
    """Triton's default gRPC port (no --grpc-port flag) and the CPU image's serve command use 8001."""
    assert not any(a.startswith("--grpc-port") for a in full["triton"]["command"])
    cpu_cmd = (REPO / "docker" / "triton-cpu.Dockerfile").read_text()
    assert f"--grpc-port {TRITON_GRPC_PORT}" in cpu_cmd


@pytest.mark.parametrize("gateway", GATEWAYS)
def test_gateway_service(full, gateway):
    service = full[gateway]
    assert service["build"]["dockerfile"] == "gateway/Dockerfile"
    assert Path(service["build"]["context"]) == REPO
    assert [p["target"] for p in service["ports"]] == [9001]
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    env = service["environment"]
    for name in (
        "CLIP_VERSION_ID",
        "CLIP_MAX_BATCH_SIZE",
        "GATEWAY_MAX_PROMPTS_PER_COMPARE",
        "GATEWAY_MAX_TEXTS_PER_REQUEST",
        "GATEWAY_MAX_BODY_BYTES",
        "GATEWAY_MAX_IMAGE_PIXELS",
        "GATEWAY_MAX_INFLIGHT",
        "GATEWAY_API_KEYS",
        "ALLOW_URL_INPUT",
        "ALLOW_NON_HTTPS_URL_INPUT",
        "ALLOW_URL_INPUT_WITHOUT_FQDN",
        "ALLOW_URL_TO_NON_GLOBAL_ADDRESSES",
        "WHITELISTED_DESTINATIONS_FOR_URL_INPUT",
        "BLACKLISTED_DESTINATIONS_FOR_URL_INPUT",
        "GATEWAY_LOG_LEVEL",
        "GATEWAY_LOG_JSON",
    ):
        assert name in env, name


def test_gateway_settings_reach_the_container(compose_config):
    model = compose_config((), env={"GATEWAY_MAX_INFLIGHT": "7", "GATEWAY_API_KEYS": "k1,k2"})
    env = model["services"]["gateway"]["environment"]
    assert env["GATEWAY_MAX_INFLIGHT"] == "7" and env["GATEWAY_API_KEYS"] == "k1,k2"


def test_cpu_profile_answers_to_the_same_names(full):
    """Prometheus and locust use `triton` and `gateway`; the CPU services carry those names as aliases."""
    assert "triton" in full["triton-cpu"]["networks"]["default"]["aliases"]
    assert "gateway" in full["gateway-cpu"]["networks"]["default"]["aliases"]
    assert int(full["triton-cpu"]["shm_size"]) >= 1 << 30
    assert full["triton-cpu"]["build"]["dockerfile"] == "docker/triton-cpu.Dockerfile"
    assert "deploy" not in full["triton-cpu"]  # no GPU reservation


# --- images ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_images_are_pinned(rendered, profile):
    for name, service in rendered[profile]["services"].items():
        image = service["image"]
        ref = image.rsplit("/", 1)[-1]
        assert ":" in ref, f"{name}: {image} has no tag"
        tag = ref.split(":", 1)[1]
        assert tag and tag != "latest", f"{name}: {image}"


# --- monitoring and load test ---------------------------------------------------------------------------------


def test_prometheus_scrapes_triton_and_gateway(full):
    config = yaml.safe_load((REPO / "docker" / "prometheus" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["triton"] == ["triton:8002"] and targets["gateway"] == ["gateway:9001"]
    assert 8002 in {p["target"] for p in full["triton"]["ports"]}
    mounts = {v["target"]: v for v in full["prometheus"]["volumes"]}
    assert Path(mounts["/etc/prometheus"]["source"]) == REPO / "docker" / "prometheus"
    for rule_file in config["rule_files"]:
        local = REPO / "docker" / "prometheus" / Path(rule_file).relative_to("/etc/prometheus")
        rules = yaml.safe_load(local.read_text())
        records = {r["record"] for g in rules["groups"] for r in g["rules"]}
        assert "triton:queue_compute:ratio" in records


DASHBOARD_METRICS = [
    "clip_gateway_requests_total",
    "clip_gateway_request_seconds_bucket",
    "clip_gateway_stage_seconds_bucket",
    "clip_gateway_inflight",
    "clip_gateway_rejected_total",
    "clip_gateway_text_cache_hits_total",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_request_success",
    "nv_gpu_utilization",
]


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_grafana_dashboard_covers_the_metrics():
    dash = _dashboard()
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    joined = "\n".join(exprs)
    for metric in DASHBOARD_METRICS:
        assert metric in joined, metric
    assert any("histogram_quantile(0.50" in e and "route" in e for e in exprs)
    assert any("histogram_quantile(0.99" in e and "route" in e for e in exprs)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_matches_the_dashboard(full):
    dash = _dashboard()
    datasources = yaml.safe_load(
        (REPO / "docker" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    variable = next(v for v in dash["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] in {d["uid"] for d in datasources}
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${%s}" % variable["name"]
    providers = yaml.safe_load(
        (REPO / "docker" / "grafana" / "provisioning" / "dashboards" / "clip-triton.yml").read_text()
    )["providers"]
    mounts = {v["target"]: Path(v["source"]) for v in full["grafana"]["volumes"] if v["type"] == "bind"}
    assert mounts[providers[0]["options"]["path"]] == DASHBOARD.parent  # the chart's file: one dashboard, not a copy
    assert mounts["/etc/grafana/provisioning"] == REPO / "docker" / "grafana" / "provisioning"


def _top_level_imports(path: Path) -> dict[str, set[str]]:
    """{file: its top-level imported packages}, following `clipbench.*` imports into the mounted package."""
    found: dict[str, set[str]] = {}
    todo = [path]
    while todo:
        source = todo.pop()
        names = set()
        for line in source.read_text().splitlines():
            if line.startswith(("import ", "from ")):
                module = line.split()[1]
                names.add(module.split(".")[0])
                if module.startswith("clipbench."):
                    todo.append(REPO / (module.replace(".", "/") + ".py"))
        found[str(source.relative_to(REPO))] = names
    return found


def test_locust_runs_headless_against_the_gateway(full):
    locust = full["locust"]
    env = locust["environment"]
    assert env["LOCUST_HOST"] == "http://gateway:9001" and env["LOCUST_HEADLESS"] == "true"
    mounts = {v["target"]: v for v in locust["volumes"]}
    assert env["LOCUST_LOCUSTFILE"] == "/mnt/locust/locustfile.py"
    # the entry file scripts/loadtest.sh uses too, and next to it the clipbench package it imports
    source = Path(mounts["/mnt/locust/locustfile.py"]["source"])
    assert source == REPO / "scripts" / "locustfile.py" and mounts["/mnt/locust/locustfile.py"]["read_only"]
    package = mounts["/mnt/locust/clipbench"]
    assert Path(package["source"]) == REPO / "clipbench" and package["read_only"]
    assert env["PYTHONPATH"] == "/mnt/locust"
    # what the locust image runs imports locust, numpy and Pillow only (besides the standard library)
    imports = _top_level_imports(source)
    assert {"scripts/locustfile.py", "clipbench/locustfile.py", "clipbench/payloads.py"} <= set(imports), imports
    allowed = {"__future__", "base64", "io", "json", "random", "functools", "numpy", "locust", "PIL", "clipbench"}
    assert set().union(*imports.values()) <= allowed, imports


def test_triton_can_be_scaled_behind_one_name(compose_config):
    """`--scale triton=2`: published ports given as ranges, and the gateway targets the service's DNS name
    (gRPC resolves it to every container and round-robins; see gateway/endpoints.py)."""
    ranges = {"TRITON_HTTP_PORT": "8000-8003", "TRITON_GRPC_PORT": "8004-8007", "TRITON_METRICS_PORT": "8008-8011"}
    services = compose_config((), env=ranges)["services"]
    published = {p["target"]: p["published"] for p in services["triton"]["ports"]}
    assert published == {8000: "8000-8003", 8001: "8004-8007", 8002: "8008-8011"}
    assert "container_name" not in services["triton"]  # a fixed name would forbid a second container
    target = services["gateway"]["environment"]["GATEWAY_TRITON_URL"]
    assert target == f"triton:{TRITON_GRPC_PORT}" and "," not in target
    assert services["gateway"]["environment"]["GATEWAY_WORKERS"] == "0"
