"""Run a Serve config file (``deploy/serve.yaml``) on the connected Ray cluster, as ``serve run FILE`` does.

The file is validated against Ray's own schema (:class:`ray.serve.schema.ServeDeploySchema`), so a typo in a
deployment option fails before anything starts. Used by ``colorize serve``, the tests and the load benchmark.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from ray.serve.schema import ServeDeploySchema

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "serve.yaml"


def load_config(path: str | Path = DEFAULT_CONFIG) -> ServeDeploySchema:
    """Parse and validate a Serve config file. Ray's schema ignores unknown keys, so they are checked here:
    a misspelt option (``max_queue_requests``) is an error, not a silently ignored line."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    unknown = unknown_keys(data)
    if unknown:
        raise ValueError(f"{path}: unknown Serve config keys: {', '.join(unknown)}")
    return ServeDeploySchema.model_validate(data)


def unknown_keys(data: Any) -> list[str]:
    """Dotted paths of keys that Ray's Serve schema does not define (application ``args`` are free-form)."""
    from ray.serve.schema import DeploymentSchema, RayActorOptionsSchema, ServeApplicationSchema

    def extra(obj: Any, schema: Any, where: str) -> list[str]:
        if not isinstance(obj, dict):
            return []
        return [f"{where}{key}" for key in obj if key not in schema.model_fields]

    if not isinstance(data, dict):
        return []
    found = extra(data, ServeDeploySchema, "")
    for i, app in enumerate(data.get("applications") or []):
        found += extra(app, ServeApplicationSchema, f"applications[{i}].")
        for j, dep in enumerate((app or {}).get("deployments") or []):
            where = f"applications[{i}].deployments[{j}]."
            found += extra(dep, DeploymentSchema, where)
            found += extra((dep or {}).get("ray_actor_options"), RayActorOptionsSchema, where + "ray_actor_options.")
    return found


def with_http(config: ServeDeploySchema, host: str | None = None, port: int | None = None) -> ServeDeploySchema:
    """The config with its HTTP host and/or port replaced (e.g. from command-line options)."""
    changes: dict[str, Any] = {}
    if host is not None:
        changes["host"] = host
    if port is not None:
        changes["port"] = port
    if not changes:
        return config
    http = config.http_options.model_copy(update=changes)
    return config.model_copy(update={"http_options": http})


def deploy(config: ServeDeploySchema, timeout_s: float = 180.0) -> None:
    """Start Serve with the config's HTTP options (if it is not running yet), deploy every application and
    wait until all are RUNNING. Raises ``RuntimeError`` with Serve's message if one fails to deploy."""
    # A private API, on purpose: Ray has no public Python call that deploys a ServeDeploySchema with its
    # deployment overrides (replicas, autoscaling, actor options). `serve.run` takes an Application and drops
    # them; `serve deploy` and the REST API need the dashboard. `serve run FILE` itself does exactly this, and
    # tests/services/test_launch.py pins these names and signatures, so a Ray upgrade that moves them fails there.
    from ray.serve._private.api import serve_start

    client = serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
    )
    client.deploy_apps(config)
    wait_until_running([app.name for app in config.applications], timeout_s)


def wait_until_running(names: list[str], timeout_s: float) -> None:
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    deadline = time.monotonic() + timeout_s
    while True:
        apps = serve.status().applications
        states = {name: apps[name].status if name in apps else ApplicationStatus.NOT_STARTED for name in names}
        failed = [n for n, s in states.items() if s == ApplicationStatus.DEPLOY_FAILED]
        if failed:
            raise RuntimeError(f"application {failed[0]!r} failed to deploy: {apps[failed[0]].message}")
        if all(s == ApplicationStatus.RUNNING for s in states.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"applications not running after {timeout_s:.0f}s: {states}")
        time.sleep(0.5)
