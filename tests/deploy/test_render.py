"""deploy/render.py: the RayService runs exactly the project's GPU Serve config (plus two cluster options)."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from deploy import render
from tests.deploy.pins import DEPLOY

MANIFEST = textwrap.dedent(
    """\
    # a comment that must survive
    apiVersion: ray.io/v1
    kind: RayService
    metadata:
      name: demo
    spec:
      # the block below is generated
      serveConfigV2: |
        applications: []

      rayClusterConfig:
        rayVersion: "1.0"  # kept as written
    """
)

SERVE = {
    "proxy_location": "HeadOnly",
    "http_options": {"host": "127.0.0.1", "port": 8123, "request_timeout_s": 60},
    "applications": [
        {
            "name": "colorize",
            "route_prefix": "/",
            "import_path": "services.build:build_app",
            "args": {"model": {"device": "auto"}, "settings": {"max_pixels": 100}},
            "deployments": [{"name": "Model", "ray_actor_options": {"num_gpus": 1}}],
        }
    ],
}


def test_render_replaces_only_the_serve_block() -> None:
    out = render.render(MANIFEST, SERVE, "deploy/x.yaml")
    doc = yaml.safe_load(out)
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    assert config["applications"] == SERVE["applications"]
    assert config["http_options"] == {"host": "0.0.0.0", "port": 8123, "request_timeout_s": 60}
    assert config["proxy_location"] == "EveryNode"
    # Everything around the block is byte-for-byte what it was.
    before, after = MANIFEST.split("    applications: []\n")
    assert out.startswith(before)
    assert out.endswith(after)
    assert "from deploy/x.yaml" in out
    # Rendering is idempotent.
    assert render.render(out, SERVE, "deploy/x.yaml") == out


def test_overrides_touch_nothing_but_cluster_networking() -> None:
    assert set(render.CLUSTER_OVERRIDES) == {"proxy_location", "http_options"}
    assert render.CLUSTER_OVERRIDES["http_options"] == {"host": "0.0.0.0"}
    merged = render.cluster_config(SERVE)
    assert merged["http_options"]["port"] == SERVE["http_options"]["port"]
    assert SERVE["http_options"]["host"] == "127.0.0.1"  # the source is not mutated


def test_render_refuses_a_manifest_without_the_block() -> None:
    with pytest.raises(render.RenderError, match="serveConfigV2"):
        render.render("apiVersion: ray.io/v1\nkind: RayService\nspec: {}\n", SERVE)


def test_check_detects_a_stale_manifest(tmp_path, capsys) -> None:
    source = tmp_path / "serve.yaml"
    source.write_text(yaml.safe_dump(SERVE))
    manifest = tmp_path / "rayservice.yaml"
    manifest.write_text(MANIFEST)
    argv = ["--serve-config", str(source), "--manifest", str(manifest)]
    assert render.main([*argv, "--check"]) == 1
    assert manifest.read_text() == MANIFEST  # --check never writes
    assert render.main(argv) == 0
    assert render.main([*argv, "--check"]) == 0
    assert render.embedded_config(manifest.read_text()) == render.cluster_config(SERVE)
    assert "out of date" in capsys.readouterr().err


def test_committed_rayservice_is_rendered_from_the_gpu_serve_config() -> None:
    """The acceptance check: the committed manifest's Serve config is the project's Serve config."""
    assert render.main(["--check"]) == 0, "deploy/kuberay/rayservice.yaml is stale: run python -m deploy.render"
    source = yaml.safe_load((DEPLOY / "serve.gpu.yaml").read_text())
    embedded = render.embedded_config((DEPLOY / "kuberay" / "rayservice.yaml").read_text())
    assert embedded["applications"] == source["applications"]
    assert {k: v for k, v in embedded.items() if k not in render.CLUSTER_OVERRIDES} == {
        k: v for k, v in source.items() if k not in render.CLUSTER_OVERRIDES
    }
    assert embedded["http_options"] == {**source["http_options"], "host": "0.0.0.0"}


def test_gpu_and_laptop_serve_configs_run_the_same_application() -> None:
    """serve.yaml (CPU) and serve.gpu.yaml (GPU, the RayService's) may size things differently, but they
    must deploy the same application with the same deployments and HTTP port."""
    laptop = yaml.safe_load((DEPLOY / "serve.yaml").read_text())
    gpu = yaml.safe_load((DEPLOY / "serve.gpu.yaml").read_text())

    def shape(config: dict) -> list[tuple]:
        return [
            (app["name"], app.get("route_prefix"), app["import_path"], [d["name"] for d in app["deployments"]])
            for app in config["applications"]
        ]

    assert shape(laptop) == shape(gpu)
    assert laptop["http_options"]["port"] == gpu["http_options"]["port"]
