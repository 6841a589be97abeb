"""Every manifest under deploy/ parses, validates against Ray's own schemas, and agrees with the pins and with
the Serve config it deploys."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.pins import DEPLOY, ROOT, lock, project_image_tag, ray_pin

KUBERAY = DEPLOY / "kuberay"
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})
GPU_INSTANCE_FAMILIES = ("g4dn.", "g5.", "g6.", "g6e.", "p3.", "p4d.", "p4de.", "p5.", "p5e.")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def rayservice() -> dict:
    return load(KUBERAY / "rayservice.yaml")


def rayjob() -> dict:
    return load(KUBERAY / "rayjob-archive.yaml")


def cluster_specs() -> list[tuple[str, dict]]:
    return [
        ("rayservice", rayservice()["spec"]["rayClusterConfig"]),
        ("rayjob", rayjob()["spec"]["rayClusterSpec"]),
    ]


def groups(cluster: dict) -> list[tuple[str, dict]]:
    """(name, group spec) for the head group and every worker group."""
    return [("head", cluster["headGroupSpec"]), *((g["groupName"], g) for g in cluster["workerGroupSpecs"])]


def pod_specs(cluster: dict) -> list[tuple[str, dict]]:
    """(group name, pod spec) for the head and every worker group."""
    return [(name, group["template"]["spec"]) for name, group in groups(cluster)]


def quantity(value: Any) -> float:
    """A Kubernetes CPU/GPU quantity ("8", "500m", 2) as a number."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def serve_demand(config: dict, *, at: str) -> tuple[float, float]:
    """(CPUs, GPUs) the Serve config's replicas need with every deployment at min_ or max_replicas."""
    cpus = gpus = 0.0
    for app in config["applications"]:
        for dep in app["deployments"]:
            scaling = dep.get("autoscaling_config") or {}
            replicas = scaling.get(f"{at}_replicas", dep.get("num_replicas", 1))
            options = dep.get("ray_actor_options") or {}
            cpus += replicas * options.get("num_cpus", 1)
            gpus += replicas * options.get("num_gpus", 0)
    return cpus, gpus


# ----------------------------------------------------------------------------------------------- parsing


def test_the_expected_manifests_exist() -> None:
    names = {rel(p) for p in YAML_FILES}
    assert {
        "deploy/serve.yaml",
        "deploy/serve.gpu.yaml",
        "deploy/cluster.yaml",
        "deploy/kuberay/rayservice.yaml",
        "deploy/kuberay/rayjob-archive.yaml",
        "deploy/kuberay/serviceaccount.yaml",
    } <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_every_yaml_parses(path: Path) -> None:
    docs = list(yaml.safe_load_all(path.read_text()))
    assert docs, f"{rel(path)} is empty"
    assert all(isinstance(doc, dict) and doc for doc in docs), f"{rel(path)}: every document must be a mapping"


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.json")), ids=rel)
def test_every_json_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


def serve_configs() -> list[tuple[str, dict]]:
    from deploy.render import embedded_config

    configs = [(rel(p), load(p)) for p in sorted(DEPLOY.glob("serve*.yaml"))]
    configs.append(
        ("deploy/kuberay/rayservice.yaml#serveConfigV2", embedded_config((KUBERAY / "rayservice.yaml").read_text()))
    )
    return configs


@pytest.mark.parametrize("name", [name for name, _ in serve_configs()])
def test_serve_configs_validate_against_rays_schema(name: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    config = dict(serve_configs())[name]
    schema = ServeDeploySchema.model_validate(config)
    assert schema.applications, f"{name} deploys nothing"
    for app in config["applications"]:
        module_name, _, attr = app["import_path"].partition(":")
        builder = getattr(importlib.import_module(module_name), attr)
        assert callable(builder), f"{app['import_path']} is not an application builder"
        # The builder's typed args (as Serve validates them at deploy time) accept the config's args.
        params = list(inspect.signature(builder).parameters.values())
        annotation = params[0].annotation if params else None
        if inspect.isclass(annotation) and hasattr(annotation, "model_validate"):
            annotation.model_validate(app.get("args") or {})


# ------------------------------------------------------------------------------------------ versions


def dockerfile_base_image() -> str:
    text = (DEPLOY / "Dockerfile").read_text()
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms, "the Dockerfile has no FROM"
    resolved = {re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], f) for f in froms}
    assert len(resolved) == 1, f"build and runtime stages must share one base image: {resolved}"
    return resolved.pop()


def project_images() -> dict[str, str]:
    """Where the project's own image is named: every KubeRay container and the cluster launcher."""
    images = {}
    for kind, cluster in cluster_specs():
        for group, pod in pod_specs(cluster):
            for container in pod["containers"]:
                images[f"{kind}/{group}/{container['name']}"] = container["image"]
    images["cluster.yaml/docker"] = load(DEPLOY / "cluster.yaml")["docker"]["image"]
    return images


def test_ray_versions_agree_with_the_pin() -> None:
    pin = ray_pin()
    assert lock()["ray"] == pin, "pyproject.toml and requirements.lock pin different Ray versions"
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert dockerfile_base_image() == f"rayproject/ray:{pin}-{py}-gpu"
    for kind, cluster in cluster_specs():
        assert str(cluster["rayVersion"]) == pin, f"{kind} rayVersion"
    # The image build and the cluster launcher both refuse to run another Ray.
    assert f"ray.__version__ == '{pin}'" in (DEPLOY / "Dockerfile").read_text()
    assert any(f"'{pin}'" in cmd for cmd in load(DEPLOY / "cluster.yaml")["setup_commands"])


def test_every_manifest_runs_the_same_project_image() -> None:
    images = project_images()
    assert len(set(images.values())) == 1, f"different images: {images}"
    image = next(iter(images.values()))
    assert not image.startswith("rayproject/"), "manifests must run the project image, not the bare Ray image"
    assert image.rsplit(":", 1)[1] == project_image_tag()


def test_the_image_installs_the_locked_torch_version() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    torch = re.search(r"^ARG\s+TORCH_VERSION=(\S+)", text, re.M)
    assert torch, "the Dockerfile must pin torch"
    assert torch[1] == lock()["torch"].split("+")[0]


# ------------------------------------------------------------------------------------------- KubeRay


@pytest.mark.parametrize("kind", ["rayservice", "rayjob"])
def test_cpu_head_and_autoscaling_gpu_workers(kind: str) -> None:
    cluster = dict(cluster_specs())[kind]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP", "never publish the head (GCS, dashboard)"
    for container in head["template"]["spec"]["containers"]:
        for section in ("requests", "limits"):
            assert "nvidia.com/gpu" not in container.get("resources", {}).get(section, {})
    gpu_groups = [
        g
        for g in cluster["workerGroupSpecs"]
        if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]
    assert gpu_groups, "no GPU worker group"
    for group in cluster["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
    for group in gpu_groups:
        resources = group["template"]["spec"]["containers"][0]["resources"]
        assert quantity(resources["limits"]["nvidia.com/gpu"]) >= 1
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
        assert group["maxReplicas"] > group["minReplicas"], "GPU workers must be able to scale"


def group_capacity(cluster: dict, *, at: str) -> tuple[float, float]:
    cpus = gpus = 0.0
    for name, spec in groups(cluster):
        count = 1 if name == "head" else spec[f"{at}Replicas"]
        limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
        pod_cpus = quantity(spec["rayStartParams"].get("num-cpus", limits["cpu"]))
        cpus += count * pod_cpus
        gpus += count * quantity(limits.get("nvidia.com/gpu", 0))
    return cpus, gpus


def test_rayservice_groups_hold_the_serve_config_at_min_and_max() -> None:
    """Minimum pods run the minimum replicas (the API comes up without waiting for the autoscaler); maximum
    pods can hold the maximum replicas (autoscaling is bounded by Serve, not starved by the cluster)."""
    from deploy.render import embedded_config

    config = embedded_config((KUBERAY / "rayservice.yaml").read_text())
    cluster = rayservice()["spec"]["rayClusterConfig"]
    for at in ("min", "max"):
        need_cpu, need_gpu = serve_demand(config, at=at)
        have_cpu, have_gpu = group_capacity(cluster, at=at)
        assert need_gpu <= have_gpu, f"at {at}: Serve needs {need_gpu} GPUs, the pods have {have_gpu}"
        assert need_cpu <= have_cpu, f"at {at}: Serve needs {need_cpu} CPUs, the pods have {have_cpu}"
    assert serve_demand(config, at="min")[1] >= 1, "the RayService's model deployment must ask for a GPU"


def test_rayjob_runs_the_archive_job_over_s3_with_gpus() -> None:
    from colorize.cli import build_parser

    spec = rayjob()["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["colorize", "archive"]
    args = build_parser().parse_args(argv[1:])  # the real CLI accepts every option
    assert args.command == "archive"
    assert str(args.src).startswith("s3://") and str(args.dst).startswith("s3://")
    assert float(args.gpus_per_worker) == 1
    workers_max = int(str(argv[argv.index("--workers") + 1]).split(",")[-1])
    gpu_group = next(g for g in spec["rayClusterSpec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    assert workers_max <= gpu_group["maxReplicas"], "--workers MAX asks for more GPUs than the group can add"
    assert spec["shutdownAfterJobFinishes"] is True


def test_rayjob_takes_s3_credentials_from_a_secret_or_an_iam_role() -> None:
    accounts = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all((KUBERAY / "serviceaccount.yaml").read_text())
        if doc["kind"] == "ServiceAccount"
    }
    for group, pod in pod_specs(rayjob()["spec"]["rayClusterSpec"]):
        account = accounts[pod["serviceAccountName"]]
        assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"], group
        for container in pod["containers"]:
            refs = [e["secretRef"] for e in container.get("envFrom", []) if "secretRef" in e]
            assert refs and all(r.get("optional") is True for r in refs), f"{group}: envFrom secretRef"
            literal = [e["name"] for e in container.get("env", []) if "value" in e and e["name"].startswith("AWS_")]
            assert not literal, f"{group}: AWS settings must come from the Secret or the role, not literals"


def test_ingress_publishes_only_the_serve_service_with_tls() -> None:
    ingress = load(KUBERAY / "ingress.yaml")
    assert ingress["spec"]["tls"], "the API must be served over TLS"
    port = load(DEPLOY / "serve.gpu.yaml")["http_options"]["port"]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == f"{rayservice()['metadata']['name']}-serve-svc"
            assert backend["port"]["number"] == port
            # /metrics (unauthenticated, internal) is not published.
            covers = path["path"] == "/metrics" or (
                path["pathType"] == "Prefix" and "/metrics".startswith(path["path"].rstrip("/") + "/")
            )
            assert not covers, f"{path['path']} publishes /metrics"


def test_network_policy_covers_the_ray_pods() -> None:
    policy = load(KUBERAY / "networkpolicy.yaml")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for kind, cluster in cluster_specs():
        for name, spec in groups(cluster):
            labels = spec["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), f"{kind}/{name} pods escape the NetworkPolicy"


# ---------------------------------------------------------------------------------- cluster launcher


def test_cluster_launcher_config_validates_against_rays_schema() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = load(DEPLOY / "cluster.yaml")
    validate_config(prepare_config(raw))
    assert raw["provider"]["type"] == "aws"
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(GPU_INSTANCE_FAMILIES), "the head is a CPU node"
    workers = [t for name, t in types.items() if name != raw["head_node_type"]]
    gpu = [t for t in workers if t["node_config"]["InstanceType"].startswith(GPU_INSTANCE_FAMILIES)]
    assert gpu, "no GPU worker type"
    for node_type in workers:
        assert 0 <= node_type["min_workers"] <= node_type["max_workers"] <= raw["max_workers"]
    assert any(t["max_workers"] > t["min_workers"] for t in gpu), "GPU workers must autoscale"


def test_cluster_launcher_installs_the_project_and_keeps_ray_private() -> None:
    raw = load(DEPLOY / "cluster.yaml")
    mounts = raw["file_mounts"]
    checkout = next(remote for remote, local in mounts.items() if local == ".")
    assert any("pip install" in cmd and checkout in cmd for cmd in raw["setup_commands"])
    assert "--env RAY_AUTH_MODE=token" in raw["docker"]["run_options"]
    head_start = " ".join(raw["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start, "the dashboard must not listen on public interfaces"
    assert "0.0.0.0" not in head_start


# ------------------------------------------------------------------------------------------- secrets

SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"aws_secret_access_key\s*[:=]\s*\S{16,}", re.I),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^\s*-?\s*name:\s*\S*(KEY|TOKEN|SECRET|PASSWORD)\S*\s*\n\s*value:", re.M | re.I),
]


@pytest.mark.parametrize("path", sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".pyc"), ids=rel)
def test_no_secret_in_deploy_files(path: Path) -> None:
    text = path.read_text(errors="replace")
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(text), f"{rel(path)} looks like it holds a secret ({pattern.pattern})"


def test_iam_policy_reads_source_and_writes_only_destination() -> None:
    policy = json.loads((DEPLOY / "aws" / "archive-policy.json").read_text())
    statements = policy["Statement"]
    actions: dict[str, set[str]] = {}
    for st in statements:
        assert st["Effect"] == "Allow"
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        acts = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        assert "*" not in resources and not any(a in {"*", "s3:*"} for a in acts), "no wildcards"
        assert not any("Delete" in a for a in acts), "the job never deletes"
        for resource in resources:
            actions.setdefault(resource, set()).update(acts)
    writable = {r for r, a in actions.items() if "s3:PutObject" in a}
    readable = {r for r, a in actions.items() if "s3:GetObject" in a}
    assert writable == {"arn:aws:s3:::example-archive/colorized/*"}
    assert "arn:aws:s3:::example-archive/scans/*" in readable
