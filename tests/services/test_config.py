"""The Serve config files against Ray's own schema and against the application they deploy (no Ray needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.build import AppArgs, build_app
from services.launch import load_config, with_http
from services.model_deployment import BatchConfig
from services.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIGS = sorted(DEPLOY.glob("serve*.yaml"))


def test_config_files_exist() -> None:
    assert DEPLOY / "serve.yaml" in CONFIGS and DEPLOY / "serve.gpu.yaml" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_matches_serve_schema_and_the_app(path: Path) -> None:
    from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

    config = load_config(path)
    assert isinstance(config, ServeDeploySchema)
    (app,) = config.applications
    ServeApplicationSchema.model_validate(app.model_dump(exclude_unset=True))
    assert app.import_path == "services.build:build_app"
    args = AppArgs.model_validate(app.args)  # the builder's own validation
    Settings(**args.settings)
    built = build_app(args)
    assert built is not None
    deployments = {d.name: d for d in app.deployments}
    assert set(deployments) == {"ColorizeIngress", "ColorizerModel"}
    for d in deployments.values():
        fields = d.model_dump(exclude_unset=True)
        # The file is the single source of scaling: every one of these is set there explicitly.
        for key in ("autoscaling_config", "max_ongoing_requests", "max_queued_requests", "ray_actor_options"):
            assert key in fields, (d.name, key)
        auto = fields["autoscaling_config"]
        assert {"min_replicas", "max_replicas", "target_ongoing_requests"} <= set(auto)
        assert 1 <= auto["min_replicas"] <= auto["max_replicas"]
        assert d.max_queued_requests > 0  # a bounded queue: overload is a 503, never unbounded waiting
    model = deployments["ColorizerModel"]
    batch = BatchConfig.model_validate(model.user_config)
    assert model.max_ongoing_requests >= batch.max_batch_size  # else a full batch could never gather
    assert "num_gpus" in model.ray_actor_options.model_dump(exclude_unset=True)


def test_cpu_defaults_fit_this_machine() -> None:
    config = load_config(DEPLOY / "serve.yaml")
    total = 0.0
    for d in config.applications[0].deployments:
        options = d.ray_actor_options.model_dump(exclude_unset=True)
        assert options.get("num_gpus", 0) == 0  # a GPU request here would wait forever
        total += options["num_cpus"] * d.autoscaling_config["max_replicas"]
    assert total <= 2.0
    assert (config.http_options.host, config.http_options.port) == ("127.0.0.1", 8000)


def test_gpu_config_asks_for_a_gpu() -> None:
    config = load_config(DEPLOY / "serve.gpu.yaml")
    model = next(d for d in config.applications[0].deployments if d.name == "ColorizerModel")
    # replicas share the GPU so that one's host work overlaps another's kernels; together they fill it
    share = model.ray_actor_options.num_gpus
    assert 0 < share <= 1 and model.autoscaling_config["max_replicas"] * share == 1


def test_with_http_overrides_host_and_port() -> None:
    config = with_http(load_config(DEPLOY / "serve.yaml"), "0.0.0.0", 9123)
    assert (config.http_options.host, config.http_options.port) == ("0.0.0.0", 9123)
    assert with_http(config) is config


@pytest.mark.parametrize(
    "bad",
    [
        {"model": {"presett": "tiny"}},  # typo
        {"model": {"top_k": -1}},
        {"settings": {"max_body_bytes": 0}},
        {"settings": {"no_such_setting": 1}},
    ],
)
def test_bad_app_args_fail_the_build(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build_app(bad)  # type: ignore[arg-type]


def test_bad_yaml_fails_against_the_schema(tmp_path: Path) -> None:
    text = (DEPLOY / "serve.yaml").read_text().replace("max_queued_requests", "max_queue_requests", 1)
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(
        ValueError, match=r"unknown Serve config keys: applications\[0\]\.deployments\[0\]\.max_queue_requests"
    ):
        load_config(path)
    path.write_text((DEPLOY / "serve.yaml").read_text().replace("num_cpus: 1", "num_cpus: -1", 1))
    with pytest.raises(ValidationError):
        load_config(path)


def test_settings_read_the_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLORIZE_API_KEY", raising=False)
    assert not Settings().auth_enabled
    monkeypatch.setenv("COLORIZE_API_KEY", "s3cret")
    settings = Settings()
    assert settings.auth_enabled and settings.api_key is not None
    assert settings.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("COLORIZE_MAX_PIXELS", "1000")
    assert Settings().max_pixels == 1000
    assert Settings(max_pixels=5).max_pixels == 5  # the config's args win over the environment


def test_batch_config_rejects_nonsense() -> None:
    with pytest.raises(ValidationError):
        BatchConfig.model_validate({"max_batch_size": 0})
    with pytest.raises(ValidationError):
        BatchConfig.model_validate({"batch_size": 8})


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_admission_refuses_before_serve_does(path: Path) -> None:
    """Serve's own refusals are plain text: every config bounds admission below them. A burst can put every
    admitted colorization in the router's queue for the model at once, and every connection (admitted or
    being refused) holds an ingress slot for a moment."""
    config = load_config(path)
    (app,) = config.applications
    settings = Settings(**AppArgs.model_validate(app.args).settings)
    deployments = {d.name: d for d in app.deployments}
    ingress, model = deployments["ColorizeIngress"], deployments["ColorizerModel"]
    admitted = settings.max_queue_depth * ingress.autoscaling_config["max_replicas"]
    assert admitted <= model.max_queued_requests
    assert ingress.max_ongoing_requests >= 4 * settings.max_queue_depth
    assert ingress.max_queued_requests >= ingress.max_ongoing_requests


@pytest.mark.parametrize("name", ["serve.yaml", "serve.gpu.yaml"])
def test_the_serve_config_is_the_one_source_of_scaling(name: str) -> None:
    """The deployments' decorators set no scaling; every config names each deployment's queues, replicas and
    resources, and the model's batching, so nothing falls back to a value written elsewhere."""
    import inspect

    from services import app, model_deployment

    for module in (app, model_deployment):
        decorators = [line for line in inspect.getsource(module).splitlines() if line.startswith("@serve.deployment")]
        assert decorators and all("max_ongoing_requests" not in d and "num_replicas" not in d for d in decorators)
    config = load_config(DEPLOY / name)
    for deployment in config.applications[0].deployments:
        dumped = deployment.model_dump(exclude_unset=True)
        for field in ("max_ongoing_requests", "max_queued_requests", "autoscaling_config", "ray_actor_options"):
            assert field in dumped, (name, deployment.name, field)
        if deployment.name == "ColorizerModel":
            BatchConfig.model_validate(deployment.user_config)  # both batching fields, required


def test_model_args_set_only_what_the_config_names() -> None:
    """PredictorConfig is the one place the model's defaults live: ModelArgs passes on only the keys given."""
    from model import ModelSpec, PredictorConfig
    from services.model_deployment import ModelArgs

    assert ModelArgs().spec() == ModelSpec()
    spec = ModelArgs.model_validate({"preset": "tiny", "precision": "fp32", "working_size": None, "top_k": 5}).spec()
    assert spec == ModelSpec(preset="tiny", predictor=PredictorConfig(precision="fp32", working_size=None, top_k=5))
    assert ModelArgs.model_validate({"device": None}).spec().predictor.device == PredictorConfig().device
    for path in sorted(DEPLOY.glob("serve*.yaml")):  # every shipped config's model args build a spec
        for app in load_config(path).applications:
            parsed = AppArgs.model_validate(app.args or {})
            replica = ModelArgs.model_validate(parsed.model.model_dump(exclude_unset=True))  # what bind() sends
            assert replica.spec() == parsed.model.spec()
    with pytest.raises(ValidationError, match="precision"):
        ModelArgs.model_validate({"precision": "fp8"})  # PredictorConfig's own check, at validation
